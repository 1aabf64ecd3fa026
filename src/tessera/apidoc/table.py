"""What the code cannot say about the API: one entry per documented path (SPEC §9, "API documents").

The paths and methods served come from the route table, the messaging bodies from their pydantic
models and the error codes and messages from ``tessera.errors``; ``tessera.apidoc.build`` joins
them. What is left is here, keyed by path: the loyalty face's parameters (its handlers read them
one by one from ``Params``), the shapes of the answers (plain dictionaries built by each domain's
``schemas``/``service``), and which errors each endpoint can answer.

A loyalty endpoint is one ``Loyalty`` entry, which documents both of its methods: GET with the
parameters in the query string, POST with them in a form or JSON body. A messaging or operator
path maps each of its methods to a ``Messaging`` or ``Operator`` entry. Aliases (``/api/v1/login``,
``/api/v2/promocodes/coupons/...``) share their entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from tessera import errors
from tessera.messaging.contacts_router import ContactIn, ContactsIn
from tessera.messaging.schemas import EmailMessageIn, SmartsendIn, SmsMessageIn, WorkflowIn

Schema = dict[str, Any]
ErrorClass = type[errors.TesseraError]


# -- building blocks ----------------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(optional: Schema | None = None, /, **required: Schema) -> Schema:
    """An object whose keyword properties are always present and whose ``optional`` ones may be."""
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
#: Amounts are JSON numbers: ``1000`` when whole, ``283.5`` otherwise.
MONEY: Schema = {"type": "number"}
#: SPEC §3: ISO 8601 UTC without an offset, with milliseconds.
DATE_TIME: Schema = {
    "type": ["string", "null"],
    "description": "ISO 8601 UTC without an offset, e.g. `2017-11-30T17:17:18.071`",
}
INT64: Schema = {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1}
#: A JSON value sent inside a form or query field as text (SPEC §3: `cart`, `promocodes`).
JSON_TEXT = "JSON sent as text inside the field"


# -- the entries --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """One loyalty parameter: a query field on GET, a form or JSON field on POST."""

    name: str
    schema: Schema
    description: str
    required: bool = False
    #: In a JSON body, when it may be more than text (``cart`` as an object).
    json_schema: Schema | None = None
    example: Any = None


@dataclass(frozen=True, slots=True)
class Loyalty:
    """A loyalty endpoint: both methods, the ``ok`` answer's fields beside ``status``, its errors.

    Every authenticated endpoint may also answer -7 and HTTP 429, and every endpoint -1000 (a body
    that cannot be read): ``tessera.apidoc.build`` adds those.
    """

    summary: str
    tag: str
    answer: Schema
    errors: tuple[ErrorClass, ...] = ()
    params: tuple[Param, ...] = ()
    description: str = ""
    #: Takes a multipart ``file``: its POST body is multipart/form-data.
    upload: bool = False
    #: Needs no token (login).
    public: bool = False
    #: Finds a code or a certificate by number: misses are counted, past the limit HTTP 429.
    lookup: bool = False


@dataclass(frozen=True, slots=True)
class Messaging:
    """One method of a messaging path. ``answer`` None: HTTP 200 with an empty body.

    ``statuses`` are the error statuses beside 401 (every call) and 404 (a path with an id).
    """

    summary: str
    tag: str
    answer: Schema | None
    body: type[BaseModel] | Schema | None = None
    query: tuple[Param, ...] = ()
    statuses: tuple[int, ...] = ()
    description: str = ""
    #: A request body to show (and for schemathesis to send first).
    example: Any = None


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator endpoint: its answers by HTTP status, each a media type and a schema."""

    summary: str
    answers: dict[int, tuple[str, Schema]]
    description: str = ""


Entry = Loyalty | dict[str, Messaging | Operator]

TAGS: list[Schema] = [
    {"name": "loyalty: login", "description": "SailPlay-compatible: a department's token (SPEC §2)."},
    {"name": "loyalty: customers", "description": "Customers and their tags (SPEC §4)."},
    {"name": "loyalty: promo codes", "description": "Groups, activation, issuing (SPEC §5, §11)."},
    {"name": "loyalty: certificates", "description": "Gift certificates (SPEC §6, §11)."},
    {"name": "loyalty: purchases", "description": "Carts priced with codes and certificates (SPEC §7)."},
    {"name": "messaging: events", "description": "eSputnik-compatible events (SPEC §8)."},
    {"name": "messaging: messages", "description": "Stored messages, smartsend, delivery status (SPEC §8)."},
    {"name": "messaging: workflows", "description": "Workflows started by an event or a tag (SPEC §8)."},
    {"name": "messaging: contacts", "description": "The loyalty face's customers as contacts (SPEC §8)."},
    {"name": "operator", "description": "Health, readiness, metrics and these documents (SPEC §9)."},
]

# -- shared answer shapes -----------------------------------------------------------------------

SCHEMAS: dict[str, Schema] = {
    "User": obj(
        id=INTEGER,
        phone=nullable(STRING),
        email=nullable(STRING),
        origin_user_id=nullable(STRING),
        first_name=nullable(STRING),
        last_name=nullable(STRING),
        middle_name=nullable(STRING),
        birth_date={"type": ["string", "null"], "description": "YYYY-MM-DD"},
        sex={"type": ["integer", "null"], "description": "1 male, 2 female, 3 other"},
    ),
    "MarketingAction": obj(
        id=INTEGER,
        alias=STRING,
        name=STRING,
        status={"type": "string", "enum": ["active", "inactive"]},
        discount_type={"type": "string", "enum": ["percent", "fixed"]},
        discount_value=NUMBER,
        skus={"type": ["array", "null"], "items": STRING},
        min_cart_total=nullable(NUMBER),
        client_msg=STRING,
        service_msg=STRING,
    ),
    "PromocodeGroup": obj(
        id=INTEGER,
        name=STRING,
        group_type={"type": "integer", "enum": [1, 2], "description": "1 simple, 2 activation"},
        apply_items_once={**BOOLEAN, "description": "true: each code is single-use"},
        enabled=BOOLEAN,
        create_date=DATE_TIME,
        update_date=DATE_TIME,
        total_count=INTEGER,
        unused_count=INTEGER,
        reserved_count=INTEGER,
        receipted_count=INTEGER,
        applied_count=INTEGER,
        marketing_actions=array(ref("MarketingAction")),
        low_stock_warning=nullable(INTEGER),
        low_stock_alarm=nullable(INTEGER),
    ),
    "Promocode": obj(
        number=STRING,
        group=obj(id=INTEGER, name=STRING, type=INTEGER, apply_items_once=BOOLEAN, enabled=BOOLEAN),
        promocode_status={
            "type": "integer",
            "enum": [1, 2, 3],
            "description": "1 available, 2 issued to a customer, 3 applied to a purchase",
        },
        is_published=BOOLEAN,
        issued_to={"type": ["object", "null"], "properties": {"id": INTEGER}, "required": ["id"]},
        receipt_date=DATE_TIME,
        activated=BOOLEAN,
        applied_times=INTEGER,
        date_of_use=DATE_TIME,
        expiration_date=DATE_TIME,
        can_be_applied=BOOLEAN,
    ),
    "CertificateGroup": obj(
        id=INTEGER,
        name=STRING,
        create_date=DATE_TIME,
        dep_id=INTEGER,
        value={**STRING, "description": 'the value as text, e.g. "50"'},
        total_count=INTEGER,
        activated_count=INTEGER,
        used_count=INTEGER,
    ),
    "AppliedAction": obj(
        {"discount": MONEY},
        id=INTEGER,
        alias=STRING,
        name=STRING,
        client_msg=STRING,
        service_msg=STRING,
    ),
    "CartPosition": obj(
        num=INTEGER,
        sku=STRING,
        product=obj(sku=STRING, id=nullable(INTEGER)),
        price={**MONEY, "description": "the position's total before discounts"},
        new_price={**MONEY, "description": "the position's total after discounts"},
        min_price=MONEY,
        quantity=NUMBER,
        discount=MONEY,
        marketing_actions=array(ref("AppliedAction")),
    ),
    "PricedCart": obj(
        cart=obj(
            positions=array(ref("CartPosition")),
            total_price=MONEY,
            original_total_price=MONEY,
            total_discount=MONEY,
        ),
        marketing_actions_applied=array(ref("AppliedAction")),
        possible_marketing_actions=array({}),
    ),
    "PromocodeVerdict": obj(
        number=STRING,
        status={
            "type": "integer",
            "enum": [1, 2, 3, 4, 5],
            "description": "1 attached, 2 recognized, 3 rule matched, 4 matched, 5 applied",
        },
        status_description=STRING,
        marketing_actions=array(obj(marketing_action_id=INTEGER, marketing_action_name=STRING)),
    ),
    "CertificatePayment": obj(
        number=STRING,
        amount={**MONEY, "description": "what the certificate pays of the cart"},
        used={**BOOLEAN, "description": "whether this call used the certificate up"},
    ),
    "Purchase": obj(
        id=INTEGER,
        order_num=nullable(STRING),
        store_department_id=INTEGER,
        user_id=nullable(INTEGER),
        original_price=MONEY,
        price=MONEY,
        paid_by_certificates=MONEY,
        to_pay=MONEY,
        purchase_date=DATE_TIME,
        is_deleted=BOOLEAN,
        deleted_date=DATE_TIME,
    ),
    "CartAnswer": obj(
        {
            "promocodes": {**array(ref("PromocodeVerdict")), "description": "with `promocodes_info=1`"},
            "certificates": {**array(ref("CertificatePayment")), "description": "when certificates pay"},
        },
        cart=ref("PricedCart"),
    ),
    "LoyaltyError": obj(
        {
            "reason": {**STRING, "description": "-4201, -4203: what is wrong with the file"},
            "duplicates": {**array(STRING), "description": "-4202: at most 100 of the repeated numbers"},
            "line": {**INTEGER, "description": "-4203: the line of the file"},
            "request_id": {**STRING, "description": "HTTP 500: the request id its log line carries"},
        },
        status={"const": "error"},
        status_code=INTEGER,
        message=STRING,
    ),
    # The messaging face.
    "MessagingError": obj(
        {
            "field": {**STRING, "description": "the field at fault, e.g. `steps.0.tag`"},
            "line": {**INTEGER, "description": "a template's syntax error: its line"},
            "column": {**INTEGER, "description": "a template's syntax error: its column"},
        },
        error=STRING,
        status_code={
            **INTEGER,
            "description": "-400, -401, -404 (-1000: a parameter the loyalty face also refuses)",
        },
    ),
    "EmailMessage": obj(
        {"from": STRING},
        id=INTEGER,
        name=STRING,
        type={"const": "email"},
        subject=nullable(STRING),
        htmlText=nullable(STRING),
        plainText=nullable(STRING),
    ),
    "SmsMessage": obj(
        {"from": STRING}, id=INTEGER, name=STRING, type={"const": "sms"}, text=nullable(STRING)
    ),
    "Message": {"oneOf": [ref("EmailMessage"), ref("SmsMessage")]},
    "Id": obj(id=INTEGER),
    "SmartsendAnswer": obj(
        id={"const": 0},
        results=array(
            obj(
                {
                    "requestId": {**STRING, "description": "what `message/status` knows the delivery by"},
                    "message": {**STRING, "description": "why the recipient was refused"},
                },
                id={"const": 0},
                locator=STRING,
                status={"type": "string", "enum": ["OK", "ERROR"]},
            )
        ),
    ),
    "DeliveryStatus": obj(
        {
            "statusDescription": {**nullable(STRING), "description": "why it failed, or is retried"},
            "attempts": INTEGER,
            "locator": STRING,
            "channel": {"type": "string", "enum": ["email", "sms"]},
            "messageId": nullable(INTEGER),
            "externalRequestId": nullable(STRING),
            "sentDate": DATE_TIME,
            "createdDate": DATE_TIME,
            "promocodes": {
                **array(obj(group=STRING, code=STRING, returned=BOOLEAN)),
                "description": "the codes `$!promocodes.issue('<group>')` put in this delivery;"
                " `returned` once its failure gave the code back to its group",
            },
        },
        requestId=STRING,
        status={"type": "string", "enum": ["queued", "sent", "failed", "not found"]},
    ),
    "Workflow": obj(
        id=INTEGER,
        name=STRING,
        enabled=BOOLEAN,
        trigger={
            "oneOf": [obj(event=STRING), obj(tag=STRING)],
            "description": '{"event": KEY} or {"tag": NAME}',
        },
        steps=array({"type": "object", "properties": {"type": STRING}, "required": ["type"]}),
        createdDate=DATE_TIME,
        updatedDate=DATE_TIME,
    ),
    "Contact": obj(
        id=INTEGER,
        firstName=nullable(STRING),
        lastName=nullable(STRING),
        channels=array(obj(type={"type": "string", "enum": ["email", "sms"]}, value=STRING)),
        externalCustomerId=nullable(STRING),
    ),
    "EventV1": obj(
        {
            "params": {
                "type": ["array", "null"],
                "items": obj({"value": {"description": "nested JSON is kept as its text"}}, name=STRING),
            }
        },
        eventTypeKey={**STRING, "maxLength": 100},
        keyValue={**STRING, "maxLength": 300, "description": "the contact the event is about"},
    ),
    "EventV2": obj(
        {
            "keyValue": {
                **STRING,
                "maxLength": 300,
                "description": "when missing: the first of the params contactId, externalCustomerId, "
                "email, phone, pushToken, EmailAddress, Phone",
            },
            "params": {
                "type": ["array", "null"],
                "items": obj({"value": {"description": "any JSON value"}}, name=STRING),
            },
        },
        eventTypeKey={**STRING, "maxLength": 100},
    ),
}

# -- the loyalty face ---------------------------------------------------------------------------

CUSTOMER_NOTE = "The customer is named by one of `user_phone` (or `phone`), `email`, `origin_user_id`."
USER_PHONE = Param(
    "user_phone",
    STRING,
    "The customer's phone: international digits without `+` (a `+`, spaces, dashes, brackets are stripped)",
    example="79001234567",
)
PHONE = Param("phone", STRING, "The seed's own name for `user_phone`")
EMAIL = Param(
    "email", STRING, "The customer's email (compared case-insensitively)", example="anna@example.com"
)
ORIGIN_USER_ID = Param("origin_user_id", STRING, "The partner's own id of the customer, 1 to 255 characters")
CUSTOMER = (USER_PHONE, PHONE, EMAIL, ORIGIN_USER_ID)
CUSTOMER_ERRORS: tuple[ErrorClass, ...] = (
    errors.MissingCustomerIdentifier,
    errors.InvalidPhone,
    errors.InvalidEmail,
    errors.CustomerNotFound,
)
CUSTOMER_WRITE_ERRORS: tuple[ErrorClass, ...] = (
    errors.InvalidPhone,
    errors.InvalidEmail,
    errors.PhoneTaken,
    errors.EmailTaken,
    errors.OriginUserIdTaken,
)
NUMBER_PARAM = Param("number", STRING, "The code's number", required=True, example="SUMMER-1")
CERTIFICATE_NUMBER = Param("number", STRING, "The certificate's number", required=True, example="GIFT-2")
TARGET_DEP_ID = Param(
    "target_dep_id",
    INT64,
    "The department (its `store_department_id`) the call is for",
    required=True,
    example=1,
)
TAGS_PARAM = Param("tags", STRING, "Tag names, comma-separated: `Tag1,Tag2`", required=True, example="VIP")
FILE = Param(
    "file",
    {"type": "string", "contentMediaType": "application/octet-stream"},
    "The numbers: .txt or .csv (one a line), .xls or .xlsx (the first sheet's first column)",
    required=True,
)
CART_IN: Schema = {
    "type": "object",
    "description": 'positions by number: `{"1":{"sku":"A1","price":1000,"quantity":1,"min_price":800}}`',
    "additionalProperties": obj(
        {"quantity": NUMBER, "min_price": NUMBER, "product_sku": STRING}, sku=STRING, price=NUMBER
    ),
}
NUMBERS_IN: Schema = {"anyOf": [STRING, array(STRING)]}
CART_PARAMS = (
    Param(
        "cart",
        STRING,
        f"The cart ({JSON_TEXT}): positions by number, `price` is the position's total",
        required=True,
        json_schema={"anyOf": [STRING, CART_IN, array(CART_IN["additionalProperties"])]},
        example='{"1":{"sku":"A1","price":1000,"quantity":1,"min_price":800}}',
    ),
    Param(
        "promocodes",
        STRING,
        f'Promo codes: a JSON array ({JSON_TEXT}), e.g. `["SUMMER-1"]`, or a comma list',
        json_schema=NUMBERS_IN,
        example='["SUMMER-1"]',
    ),
    Param(
        "certificates",
        STRING,
        f'Certificates that pay: a JSON array ({JSON_TEXT}), e.g. `["GIFT-1"]`, or a comma list',
        json_schema=NUMBERS_IN,
    ),
    Param("promocodes_info", BOOLEAN, "1: answer each code's status in `promocodes`"),
    Param("target_dep_id", INT64, "Book it to another department of the partner (default: the caller's)"),
)
CERTIFICATE_USE_ERRORS: tuple[ErrorClass, ...] = (
    errors.DepartmentNotFound,
    errors.CertificateNotFound,
    errors.CertificateOfAnotherDepartment,
    errors.CertificateDeleted,
    errors.CertificateAlreadyUsed,
    errors.CertificateNotActivated,
)
PURCHASE_LOOKUP = (
    Param("purchase_id", INT64, "The purchase's id (wins over `order_num`)", example=1),
    Param("order_num", STRING, "The department's order number", example="order-1"),
    Param("target_dep_id", INT64, "The department of `order_num` (default: the caller's)"),
)

LOGIN = Loyalty(
    "Log in as a department's employee",
    "loyalty: login",
    obj(
        token={**STRING, "pattern": "^[0-9a-f]{40}$", "description": "carried by every other call"},
        pin_codes={**array(STRING), "description": "the department's employees"},
    ),
    (errors.MissingField, errors.LoginFailed),
    (
        Param("store_department_id", INT64, "The department", required=True),
        Param("store_department_key", STRING, "The department's secret key", required=True),
        Param("pin_code", STRING, "An employee's PIN", required=True),
    ),
    public=True,
)
USER_FIELDS = (
    *CUSTOMER,
    Param("first_name", STRING, "First name"),
    Param("last_name", STRING, "Last name"),
    Param("middle_name", STRING, "Middle name"),
    Param("birth_date", STRING, "YYYY-MM-DD (years before 1900 become 1900)", example="1990-05-17"),
    Param("sex", {"type": "integer", "enum": [1, 2, 3]}, "1 male, 2 female, 3 other"),
)
PROMOCODE_LIST = array(ref("Promocode"))


PROMOCODE_INFO = Loyalty(
    "Find a promo code in every group",
    "loyalty: promo codes",
    obj(
        numbers={**PROMOCODE_LIST, "description": "the seed's name"},
        promocodes={**PROMOCODE_LIST, "description": "the SDK's name: the same list"},
    ),
    (errors.MissingField, errors.PromocodeNotFound),
    (NUMBER_PARAM,),
    description="The same text may be a code of two groups. `promocodes/search` is an alias.",
    lookup=True,
)


def certificate_paths(suffix: str, entry: Loyalty) -> dict[str, Entry]:
    """SPEC names them `coupons/...`; the seed's own pages put them under `promocodes/coupons/`."""
    return {f"/api/v2/coupons{suffix}": entry, f"/api/v2/promocodes/coupons{suffix}": entry}


def purchase_paths(suffix: str, entry: Loyalty) -> dict[str, Entry]:
    """Older SailPlay clients call the purchase endpoints under /api/v1."""
    return {f"/api/v2{suffix}": entry, f"/api/v1{suffix}": entry}


LOYALTY: dict[str, Entry] = {
    "/api/v2/login": LOGIN,
    "/api/v1/login": LOGIN,
    "/api/v2/users/add": Loyalty(
        "Add a customer, or complete the one an identifier names",
        "loyalty: customers",
        ref("User"),
        (errors.MissingCustomerIdentifier, *CUSTOMER_WRITE_ERRORS),
        USER_FIELDS,
        description="Given profile fields overwrite stored ones; absent ones are kept. " + CUSTOMER_NOTE,
    ),
    "/api/v2/users/info": Loyalty(
        "A customer", "loyalty: customers", ref("User"), CUSTOMER_ERRORS, CUSTOMER, description=CUSTOMER_NOTE
    ),
    "/api/v2/users/tags/add": Loyalty(
        "Give a customer tags",
        "loyalty: customers",
        obj(),
        (errors.MissingField, *CUSTOMER_ERRORS),
        (*CUSTOMER, TAGS_PARAM),
        description="A tag new to the customer starts the workflows it triggers. " + CUSTOMER_NOTE,
    ),
    "/api/v2/users/tags/list": Loyalty(
        "A customer's tags",
        "loyalty: customers",
        obj(tags=array(obj(name=STRING, added_date=DATE_TIME))),
        CUSTOMER_ERRORS,
        CUSTOMER,
        description=CUSTOMER_NOTE,
    ),
    "/api/v2/users/tags/delete": Loyalty(
        "Take tags from a customer",
        "loyalty: customers",
        obj(deleted_count=INTEGER),
        (errors.MissingField, *CUSTOMER_ERRORS),
        (*CUSTOMER, TAGS_PARAM),
        description=CUSTOMER_NOTE,
    ),
    "/api/v2/promocodes/groups/list": Loyalty(
        "The partner's promo-code groups",
        "loyalty: promo codes",
        obj(groups=obj(enabled=array(ref("PromocodeGroup")), disabled=array(ref("PromocodeGroup")))),
    ),
    "/api/v2/promocodes/info": PROMOCODE_INFO,
    "/api/v2/promocodes/search": PROMOCODE_INFO,
    "/api/v2/promocodes/activate": Loyalty(
        "Activate a code of an activation group for a customer",
        "loyalty: promo codes",
        obj(promocode_status={**INTEGER, "description": "2: issued to the customer"}),
        (
            errors.MissingField,
            *CUSTOMER_ERRORS,
            errors.PromocodeGroupNotFound,
            errors.PromocodeNotFound,
            errors.NotActivationGroup,
            errors.PromocodeGroupDisabled,
            errors.PromocodeAlreadyActivated,
            errors.PromocodeExpired,
        ),
        (*CUSTOMER, Param("group_name", STRING, "The group", required=True, example="Summer"), NUMBER_PARAM),
        description="A single-use code activates once, ever; a multi-use code once per customer. "
        "The customer gets the tag `Applied promo code <group name>`. " + CUSTOMER_NOTE,
        lookup=True,
    ),
    "/api/v2/promocodes/issue": Loyalty(
        "Hand a customer the group's next free code",
        "loyalty: promo codes",
        obj(promocode=ref("Promocode")),
        (
            errors.MissingField,
            *CUSTOMER_ERRORS,
            errors.PromocodeGroupNotFound,
            errors.PromocodeGroupDisabled,
            errors.NoFreePromocodes,
        ),
        (*CUSTOMER, Param("group_name", STRING, "The group", required=True, example="Summer")),
        description=CUSTOMER_NOTE,
    ),
    "/api/v2/promocodes/list-for-user": Loyalty(
        "A customer's promo codes",
        "loyalty: promo codes",
        obj(promocodes=PROMOCODE_LIST),
        CUSTOMER_ERRORS,
        CUSTOMER,
        description=CUSTOMER_NOTE,
    ),
    "/api/v2/promocodes/numbers/add": Loyalty(
        "Upload codes: create a group or add to it",
        "loyalty: promo codes",
        obj(imported_count=INTEGER, group=ref("PromocodeGroup")),
        (errors.InvalidFile, errors.MissingField, errors.DuplicateNumbers, errors.InvalidNumber),
        (
            FILE,
            Param("name", STRING, "The group's name, 1 to 128 characters", required=True, example="Summer"),
            Param(
                "type",
                {"type": "string", "enum": ["1", "2", "simple", "activation"]},
                "A new group's type: 1 simple (default), 2 activation",
            ),
            Param("apply_items_once", BOOLEAN, "A new group's codes are single-use (default true)"),
            Param("expires_at", STRING, "The codes' expiry, ISO 8601"),
        ),
        description="All or nothing: a number that repeats (in the file or the group) imports nothing.",
        upload=True,
    ),
    "/api/v2/promocodes/groups/edit": Loyalty(
        "Edit a group: enable, rename, its promo action, its low-stock thresholds",
        "loyalty: promo codes",
        obj(group=ref("PromocodeGroup")),
        (errors.MissingField, errors.PromocodeGroupNotFound, errors.PromocodeGroupNameTaken),
        (
            Param("group_id", INT64, "The group", required=True, example=1),
            Param("enabled", BOOLEAN, "Enable or disable the group"),
            Param("name", STRING, "A new name, 1 to 128 characters"),
            Param(
                "discount_type",
                {"type": "string", "enum": ["percent", "fixed", "none"]},
                "The promo action: percent or fixed off; none removes it",
            ),
            Param("discount_value", NUMBER, "The percent (above 0, at most 100) or the amount off"),
            Param(
                "skus",
                STRING,
                f"The SKUs the action applies to: a JSON array ({JSON_TEXT}); absent: the whole cart",
                json_schema={"anyOf": [STRING, array(STRING)]},
                example='["A1"]',
            ),
            Param("min_cart_total", NUMBER, "The cart total the action needs"),
            Param("low_stock_warning", STRING, "Free codes at which the low-stock event fires (`none`: off)"),
            Param("low_stock_alarm", STRING, "Free codes at which the low-stock alarm fires (`none`: off)"),
        ),
    ),
    **certificate_paths(
        "/numbers/add",
        Loyalty(
            "Upload certificates: a new group",
            "loyalty: certificates",
            obj(group=obj(id=INTEGER, name=STRING, dep_id=INTEGER), imported_count=INTEGER),
            (
                errors.MissingField,
                errors.InvalidFile,
                errors.InvalidPinCode,
                errors.DepartmentNotFound,
                errors.DuplicateNumbers,
                errors.InvalidNumber,
            ),
            (
                FILE,
                Param("type", {"type": "integer", "enum": [2]}, "Certificates are type 2"),
                Param(
                    "value", NUMBER, "Each certificate's value: positive, at most two decimals", required=True
                ),
                Param("name", STRING, "The group's name", required=True),
                TARGET_DEP_ID,
                Param("pin_code", STRING, "An employee's PIN of the calling department", required=True),
            ),
            description="Numbers are 2 to 255 characters, unique within the partner. All or nothing.",
            upload=True,
        ),
    ),
    **certificate_paths(
        "/groups/list",
        Loyalty(
            "Certificate groups with their counts",
            "loyalty: certificates",
            obj(groups=array(ref("CertificateGroup"))),
            params=(Param("target_dep_id", INT64, "Only this department's groups"),),
        ),
    ),
    **certificate_paths(
        "/numbers/status",
        Loyalty(
            "A certificate's state",
            "loyalty: certificates",
            obj(
                number=STRING,
                activated=BOOLEAN,
                used=BOOLEAN,
                deleted=BOOLEAN,
                value_type={"const": 2},
                value={**STRING, "description": 'the value as text, e.g. "50"'},
                group=obj(id=INTEGER, name=STRING),
                dep_id=INTEGER,
                activated_date=DATE_TIME,
                used_date=DATE_TIME,
                deleted_date=DATE_TIME,
            ),
            (errors.MissingField, errors.CertificateNotFound),
            (CERTIFICATE_NUMBER,),
            description="A deleted certificate stays findable, as deleted.",
            lookup=True,
        ),
    ),
    **certificate_paths(
        "/numbers/activate",
        Loyalty(
            "Activate a certificate",
            "loyalty: certificates",
            obj(activated={"const": True}),
            (
                errors.MissingField,
                errors.CertificateNotFound,
                errors.DepartmentNotFound,
                errors.CertificateOfAnotherDepartment,
                errors.CertificateDeleted,
                errors.CertificateAlreadyUsed,
                errors.CertificateAlreadyActivated,
            ),
            (CERTIFICATE_NUMBER, TARGET_DEP_ID),
            description="Only in the certificate's own department.",
            lookup=True,
        ),
    ),
    **certificate_paths(
        "/numbers/use",
        Loyalty(
            "Use an activated certificate",
            "loyalty: certificates",
            obj(used={"const": True}),
            (errors.MissingField, *CERTIFICATE_USE_ERRORS),
            (CERTIFICATE_NUMBER, TARGET_DEP_ID),
            description="Once, even under concurrent requests; only in the certificate's own department.",
            lookup=True,
        ),
    ),
    **certificate_paths(
        "/numbers/delete",
        Loyalty(
            "Delete a certificate, in any state, for good",
            "loyalty: certificates",
            obj(deleted={"const": True}, deleted_date=DATE_TIME, number=STRING),
            (errors.MissingField, errors.CertificateNotFound),
            (CERTIFICATE_NUMBER,),
        ),
    ),
    **purchase_paths(
        "/marketing-actions/calc",
        Loyalty(
            "Price a cart with codes and certificates, changing nothing",
            "loyalty: purchases",
            ref("CartAnswer"),
            (errors.MissingField, *CERTIFICATE_USE_ERRORS),
            CART_PARAMS,
        ),
    ),
    **purchase_paths(
        "/purchases/new",
        Loyalty(
            "Record a purchase: apply its codes, use its certificates",
            "loyalty: purchases",
            {"allOf": [ref("CartAnswer"), obj(purchase=ref("Purchase"))]},
            (errors.MissingField, *CERTIFICATE_USE_ERRORS, *CUSTOMER_WRITE_ERRORS),
            (
                *CART_PARAMS,
                Param(
                    "order_num",
                    STRING,
                    "Unique per department: a repeat answers the first result again",
                    example="order-1",
                ),
                *CUSTOMER,
            ),
            description="An unknown customer or SKU is created. " + CUSTOMER_NOTE,
        ),
    ),
    **purchase_paths(
        "/purchases/get",
        Loyalty(
            "A purchase, as first answered",
            "loyalty: purchases",
            {"allOf": [ref("CartAnswer"), obj(purchase=ref("Purchase"))]},
            (errors.MissingField, errors.PurchaseNotFound),
            PURCHASE_LOOKUP,
            description="By `purchase_id`, or by `order_num`.",
        ),
    ),
    **purchase_paths(
        "/purchases/delete",
        Loyalty(
            "Delete a purchase: its codes get their use back",
            "loyalty: purchases",
            obj(purchase=ref("Purchase")),
            (errors.MissingField, errors.PurchaseNotFound),
            PURCHASE_LOOKUP,
            description="Certificates stay used. Deleting twice changes nothing the second time.",
        ),
    ),
}

# -- the messaging face -------------------------------------------------------------------------

#: The messaging face's request bodies: their JSON Schemas are the models' own.
MODELS: tuple[type[BaseModel], ...] = (
    EmailMessageIn,
    SmsMessageIn,
    SmartsendIn,
    WorkflowIn,
    ContactIn,
    ContactsIn,
)
MESSAGE_BODY: Schema = {
    "anyOf": [ref("EmailMessageIn"), ref("SmsMessageIn")],
    "description": "The fields of the stored message's own channel",
}
EVENT_DESCRIPTION = (
    "Stored, then starts every enabled workflow whose trigger is `eventTypeKey`. "
    "A body over 20 KB is refused."
)
EMAIL_EXAMPLE = {
    "name": "Welcome code",
    "from": "shop@example.com",
    "subject": "Your code",
    "htmlText": "<p>Your code: $!data.get('code')</p>",
    "plainText": "Your code: $!data.get('code')",
}
SMS_EXAMPLE = {"name": "Code by SMS", "from": "Shop", "text": "Code $!data.get('code')"}
EVENT_EXAMPLE = {
    "eventTypeKey": "promo_signup",
    "keyValue": "anna@example.com",
    "params": [{"name": "EmailAddress", "value": "anna@example.com"}],
}
WORKFLOW_EXAMPLE = {
    "name": "Welcome code",
    "enabled": True,
    "trigger": {"event": "promo_signup"},
    "steps": [
        {"type": "issue_promocode", "group": "Summer", "as": "code"},
        {"type": "send", "message_id": 1, "to_param": "EmailAddress"},
        {"type": "add_tag", "tag": "Got summer code"},
        {"type": "wait", "seconds": 3600},
    ],
}
CONTACT_EXAMPLE = {
    "channels": [{"type": "email", "value": "boris@example.com"}, {"type": "sms", "value": "79007654321"}],
    "firstName": "Boris",
    "lastName": "Petrov",
    "externalCustomerId": "ext-2",
}
CONTACT_CRITERIA = (
    Param("email", STRING, "A contact's email", example="anna@example.com"),
    Param("sms", STRING, "A contact's phone", example="79001234567"),
    Param("externalCustomerId", STRING, "A contact's external id (the loyalty face's `origin_user_id`)"),
)

MESSAGING: dict[str, Entry] = {
    "/api/v1/event": {
        "POST": Messaging(
            "Fire an event",
            "messaging: events",
            None,
            ref("EventV1"),
            statuses=(400,),
            description=EVENT_DESCRIPTION,
            example=EVENT_EXAMPLE,
        )
    },
    "/api/v2/event": {
        "POST": Messaging(
            "Fire an event (params may hold nested JSON)",
            "messaging: events",
            None,
            ref("EventV2"),
            statuses=(400,),
            description=EVENT_DESCRIPTION,
            example=EVENT_EXAMPLE,
        )
    },
    "/api/v1/messages": {
        "GET": Messaging("The partner's messages", "messaging: messages", array(ref("Message")))
    },
    "/api/v1/messages/email": {
        "POST": Messaging(
            "Store an email message",
            "messaging: messages",
            ref("Id"),
            EmailMessageIn,
            statuses=(400,),
            description="`subject`, `htmlText` and `plainText` are Velocity templates, checked when stored.",
            example=EMAIL_EXAMPLE,
        )
    },
    "/api/v1/messages/sms": {
        "POST": Messaging(
            "Store an SMS message",
            "messaging: messages",
            ref("Id"),
            SmsMessageIn,
            statuses=(400,),
            description="`text` is a Velocity template, checked when stored.",
            example=SMS_EXAMPLE,
        )
    },
    "/api/v1/messages/{message_id}": {
        "GET": Messaging("A message", "messaging: messages", ref("Message")),
        "PUT": Messaging(
            "Replace a message (its channel stays)",
            "messaging: messages",
            ref("Message"),
            MESSAGE_BODY,
            statuses=(400,),
            example=EMAIL_EXAMPLE,
        ),
        "DELETE": Messaging("Delete a message", "messaging: messages", None),
    },
    "/api/v1/message/{message_id}/smartsend": {
        "POST": Messaging(
            "Send a stored message to many recipients, each with its own data",
            "messaging: messages",
            ref("SmartsendAnswer"),
            SmartsendIn,
            statuses=(400,),
            description="At most 1000 recipients. `jsonParam` is a JSON *string*. Each recipient is "
            "answered OK with a `requestId`, or ERROR with why; delivery happens later.",
            example={
                "recipients": [{"locator": "anna@example.com", "jsonParam": '{"code": "SUMMER-1"}'}],
                "email": True,
            },
        )
    },
    "/api/v1/message/status": {
        "GET": Messaging(
            "How deliveries went",
            "messaging: messages",
            obj(results=array(ref("DeliveryStatus"))),
            query=(
                Param(
                    "ids",
                    array(STRING),
                    "requestIds: a comma list, or one `ids` key per id (at most 1000)",
                    required=True,
                ),
            ),
            statuses=(400,),
        )
    },
    "/api/v1/workflows": {
        "POST": Messaging(
            "Create a workflow",
            "messaging: workflows",
            ref("Workflow"),
            WorkflowIn,
            statuses=(400,),
            description="Steps: `issue_promocode` (`group`, `as`), `send` (`message_id`, `to_param`), "
            "`add_tag` (`tag`), `wait` (`seconds`).",
            example=WORKFLOW_EXAMPLE,
        ),
        "GET": Messaging("The partner's workflows", "messaging: workflows", array(ref("Workflow"))),
    },
    "/api/v1/workflows/{workflow_id}": {
        "GET": Messaging("A workflow", "messaging: workflows", ref("Workflow")),
        "PUT": Messaging(
            "Replace a workflow",
            "messaging: workflows",
            ref("Workflow"),
            WorkflowIn,
            statuses=(400,),
            example=WORKFLOW_EXAMPLE,
        ),
        "DELETE": Messaging("Delete a workflow", "messaging: workflows", None),
    },
    "/api/v1/contact": {
        "POST": Messaging(
            "Add or update a contact",
            "messaging: contacts",
            ref("Id"),
            ContactIn,
            statuses=(400,),
            example=CONTACT_EXAMPLE,
        ),
        "DELETE": Messaging(
            "Remove a contact by its external id",
            "messaging: contacts",
            None,
            query=(Param("externalCustomerId", STRING, "The contact's external id", required=True),),
            statuses=(400, 404),
            description="Its personal data and tags are erased; codes and purchases stay.",
        ),
    },
    "/api/v1/contact/subscribe": {
        "POST": Messaging(
            "Add or update a contact and fire `subscribeFromApi`",
            "messaging: contacts",
            ref("Id"),
            {"anyOf": [ref("ContactIn"), obj(contact=ref("ContactIn"))]},
            statuses=(400,),
            description="A known contact fires `subscribeUpdateFromApi` instead.",
            example={"contact": CONTACT_EXAMPLE},
        )
    },
    "/api/v1/contacts": {
        "POST": Messaging(
            "Add or update many contacts",
            "messaging: contacts",
            obj(results=array(ref("Id"))),
            ContactsIn,
            statuses=(400,),
            description="`dedupeOn` is `email`, `sms` or `externalCustomerId`.",
            example={"contacts": [CONTACT_EXAMPLE], "dedupeOn": "email"},
        ),
        "GET": Messaging(
            "Find a contact",
            "messaging: contacts",
            array(ref("Contact")),
            query=CONTACT_CRITERIA,
            statuses=(400,),
            description="By one of `email`, `sms`, `externalCustomerId`: an array of zero or one.",
        ),
    },
    "/api/v1/contact/{contact_id}": {
        "GET": Messaging("A contact", "messaging: contacts", ref("Contact")),
        "PUT": Messaging(
            "Replace a contact",
            "messaging: contacts",
            ref("Contact"),
            ContactIn,
            statuses=(400,),
            example=CONTACT_EXAMPLE,
        ),
        "DELETE": Messaging(
            "Remove a contact",
            "messaging: contacts",
            None,
            description="Its personal data and tags are erased; codes and purchases stay.",
        ),
    },
}

# -- the operator's ------------------------------------------------------------------------------

JSON = "application/json"
OPERATOR: dict[str, Entry] = {
    "/healthz": {"GET": Operator("The process runs", {200: (JSON, obj(status={"const": "ok"}))})},
    "/readyz": {
        "GET": Operator(
            "The database answers and its schema is current",
            {
                200: (JSON, obj(status={"const": "ok"}, schema={**STRING, "description": "the migration"})),
                503: (JSON, obj(status={"const": "error"}, reason=STRING)),
            },
        )
    },
    "/metrics": {
        "GET": Operator(
            "Prometheus metrics",
            {200: ("text/plain", {**STRING, "description": "the Prometheus text format"})},
            description="Requests by route template and status, deliveries, the outbox, waiting runs.",
        )
    },
    "/openapi.json": {"GET": Operator("This document", {200: (JSON, {"type": "object"})})},
    "/docs": {
        "GET": Operator(
            "This document, rendered (Swagger UI)",
            {200: ("text/html", STRING)},
            description="Every resource it loads is served by Tessera itself.",
        )
    },
    "/docs/swagger-ui-bundle.js": {
        "GET": Operator("Swagger UI's script, for /docs", {200: ("text/javascript", STRING)})
    },
    "/docs/swagger-ui.css": {
        "GET": Operator("Swagger UI's style sheet, for /docs", {200: ("text/css", STRING)})
    },
}

#: Every documented path.
PATHS: dict[str, Entry] = {**LOYALTY, **MESSAGING, **OPERATOR}
