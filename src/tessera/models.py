"""Imports every domain's models so ``Base.metadata`` is complete (for Alembic and tests)."""

from tessera.admin.models import AdminSession, AdminUser
from tessera.certificates.models import Certificate, CertificateGroup
from tessera.customers.models import Customer, CustomerTag, Tag
from tessera.db import Base
from tessera.messaging.models import Delivery, Event, Message, Workflow, WorkflowRun
from tessera.promocodes.models import Promocode, PromocodeActivation, PromocodeGroup
from tessera.purchases.models import Product, Purchase, PurchaseCertificate, PurchasePromocode
from tessera.tenancy.models import ApiKey, AuthToken, Department, Employee, Partner

__all__ = [
    "AdminSession",
    "AdminUser",
    "ApiKey",
    "AuthToken",
    "Base",
    "Certificate",
    "CertificateGroup",
    "Customer",
    "CustomerTag",
    "Delivery",
    "Department",
    "Employee",
    "Event",
    "Message",
    "Partner",
    "Product",
    "Promocode",
    "PromocodeActivation",
    "PromocodeGroup",
    "Purchase",
    "PurchaseCertificate",
    "PurchasePromocode",
    "Tag",
    "Workflow",
    "WorkflowRun",
]
