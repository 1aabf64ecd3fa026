"""Look-ups: a code or certificate by number, a customer by phone, email or external id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from tessera.admin.web import AdminNotFound, Page, signed_in_page
from tessera.certificates import repository as certificate_repository
from tessera.customers import repository as customer_repository
from tessera.customers.identifiers import customer_refs
from tessera.customers.models import Customer
from tessera.messaging import repository as messaging_repository
from tessera.promocodes import repository as promocode_repository
from tessera.purchases import repository as purchase_repository
from tessera.sql import on_session
from tessera.tenancy import repository as tenancy_repository

router = APIRouter(include_in_schema=False)

MAX_QUERY_LENGTH = 320
CUSTOMER_PURCHASES_SHOWN = 20
CUSTOMER_DELIVERIES_SHOWN = 20


@router.get("/admin/lookup", response_class=HTMLResponse)
async def lookup(page: Page = Depends(signed_in_page)) -> Response:
    query = page.request.query_params.get("q", "").strip()[:MAX_QUERY_LENGTH]
    codes, certificate, customers = [], None, []
    if query:
        async with page.database.reading() as session:
            codes = await promocode_repository.find_by_number(
                await on_session(session), page.partner_id, query
            )
            certificate = await certificate_repository.find(session, page.partner_id, query)
            seen: set[int] = set()
            for ref in customer_refs(query):
                customer = await customer_repository.find(session, page.partner_id, ref)
                if customer is not None and customer.id not in seen:
                    seen.add(customer.id)
                    customers.append((customer, ref.kind.value))
    return page.render("lookup.html", query=query, codes=codes, certificate=certificate, customers=customers)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime | None
    what: str
    customer: Customer | None = None


def _by_time(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(entries, key=lambda entry: (entry.at is None, entry.at or datetime.min))


@router.get("/admin/codes/{code_id:tessera_id}", response_class=HTMLResponse)
async def code_page(code_id: int, page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.reading() as session:
        found = await promocode_repository.get_code(session, page.partner_id, code_id)
        if found is None:
            raise AdminNotFound()
        code, group = found
        owner = (
            await customer_repository.get(session, page.partner_id, code.customer_id)
            if code.customer_id
            else None
        )
        activations = await promocode_repository.activations_of_code(session, page.partner_id, code.id)
        purchases = await purchase_repository.purchases_with_code(session, page.partner_id, code.id)
        departments = await tenancy_repository.department_names(session, page.partner_id)
        # The messages that carried it ($!promocodes.issue): a delivery takes a code of its own
        # partner's group, so they are this partner's.
        deliveries = await messaging_repository.deliveries_of_code(await on_session(session), code.id)
    history: list[HistoryEntry] = []
    # Activating a free code also gives it to the customer, at the same moment: one entry, not two.
    received_by_activation = code.activated_at is not None and code.receipt_date == code.activated_at
    if code.receipt_date is not None and owner is not None and not received_by_activation:
        history.append(HistoryEntry(code.receipt_date, "issued to", owner))
    for activation, customer in activations:
        where = departments.get(activation.department_id, activation.department_id)
        history.append(HistoryEntry(activation.activated_at, f"activated in {where} by", customer))
    for purchase in purchases:
        what = f"applied to order {purchase.order_num or purchase.id}"
        if purchase.deleted_at is not None:
            history.append(
                HistoryEntry(
                    purchase.deleted_at,
                    f"order {purchase.order_num or purchase.id} deleted: the use is given back",
                )
            )
        history.append(HistoryEntry(purchase.purchase_date, what))
    return page.render(
        "code.html", code=code, group=group, owner=owner, history=_by_time(history), deliveries=deliveries
    )


@router.get("/admin/certificates/{certificate_id:tessera_id}", response_class=HTMLResponse)
async def certificate_page(certificate_id: int, page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.reading() as session:
        found = await certificate_repository.get_certificate(session, page.partner_id, certificate_id)
        if found is None:
            raise AdminNotFound()
        certificate, group = found
        purchases = await purchase_repository.purchases_with_certificate(
            session, page.partner_id, certificate.id
        )
        department = await tenancy_repository.get_department(session, certificate.department_id)
    history = [HistoryEntry(group.created_at, "created (uploaded)")]
    if certificate.activated_at is not None:
        history.append(HistoryEntry(certificate.activated_at, "activated"))
    if certificate.used_at is not None:
        history.append(HistoryEntry(certificate.used_at, "used"))
    for purchase, amount in purchases:
        history.append(
            HistoryEntry(
                purchase.purchase_date, f"paid {amount:,.2f} of order {purchase.order_num or purchase.id}"
            )
        )
    if certificate.deleted_at is not None:
        history.append(HistoryEntry(certificate.deleted_at, "deleted"))
    return page.render(
        "certificate.html",
        certificate=certificate,
        group=group,
        department=department,
        history=_by_time(history),
    )


@router.get("/admin/customers/{customer_id:tessera_id}", response_class=HTMLResponse)
async def customer_page(customer_id: int, page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.reading() as session:
        customer = await customer_repository.get(session, page.partner_id, customer_id)
        if customer is None:
            raise AdminNotFound()
        tags = await customer_repository.customer_tags(session, page.partner_id, customer.id)
        codes = await promocode_repository.codes_of_customer(session, page.partner_id, customer.id)
        activated = await promocode_repository.activation_times_of_customer(
            session, page.partner_id, customer.id
        )
        purchases = await purchase_repository.purchases_of_customer(
            session, page.partner_id, customer.id, CUSTOMER_PURCHASES_SHOWN
        )
        addresses = [address for address in (customer.email, customer.phone) if address]
        deliveries = (
            await messaging_repository.list_deliveries(
                session,
                page.partner_id,
                status=None,
                channel=None,
                recipients=addresses,
                before_id=None,
                limit=CUSTOMER_DELIVERIES_SHOWN,
            )
            if addresses
            else []
        )
    return page.render(
        "customer.html",
        customer=customer,
        tags=tags,
        codes=[(code, group, activated.get(code.id)) for code, group in codes],
        purchases=purchases,
        deliveries=deliveries,
    )
