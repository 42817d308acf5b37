//! Schema URNs and the built-in attribute definitions.
//!
//! The definitions serve two purposes: `/Schemas` discovery output, and
//! knowing the canonical spelling, type and plurality of an attribute when
//! normalising input that arrives with arbitrary casing (RFC 7643 §2.1 makes
//! attribute names case-insensitive, and Entra's test suites exploit that).

/// Core User resource schema.
pub const SCHEMA_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group resource schema.
pub const SCHEMA_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension schema.
pub const SCHEMA_ENTERPRISE_USER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// ListResponse message.
pub const SCHEMA_LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// PatchOp message.
pub const SCHEMA_PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Error message.
pub const SCHEMA_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// SearchRequest message (POST `.search`).
pub const SCHEMA_SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// BulkRequest message.
pub const SCHEMA_BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// ServiceProviderConfig resource schema.
pub const SCHEMA_SERVICE_PROVIDER_CONFIG: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// ResourceType resource schema.
pub const SCHEMA_RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// Schema resource schema.
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// Microsoft-specific group URN that Entra puts in `schemas` of a group POST.
/// Tolerated, never required.
pub const SCHEMA_ADSCIM_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

/// True for the core User or Group URN: attributes qualified with these live
/// at the top level of the resource, not under a URN key.
pub(crate) fn is_core_urn(urn: &str) -> bool {
    urn.eq_ignore_ascii_case(SCHEMA_USER) || urn.eq_ignore_ascii_case(SCHEMA_GROUP)
}

pub(crate) fn is_enterprise_urn(urn: &str) -> bool {
    urn.eq_ignore_ascii_case(SCHEMA_ENTERPRISE_USER)
}

pub(crate) fn looks_like_urn(s: &str) -> bool {
    s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttrType {
    String,
    Boolean,
    Complex,
    Reference,
    DateTime,
    Binary,
}

impl AttrType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Complex => "complex",
            AttrType::Reference => "reference",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returned {
    Always,
    Never,
    Default,
}

impl Returned {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uniqueness {
    None,
    Server,
}

impl Uniqueness {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AttrDef {
    pub(crate) name: &'static str,
    pub(crate) ty: AttrType,
    pub(crate) multi: bool,
    pub(crate) required: bool,
    pub(crate) case_exact: bool,
    pub(crate) mutability: Mutability,
    pub(crate) returned: Returned,
    pub(crate) uniqueness: Uniqueness,
    pub(crate) description: &'static str,
    pub(crate) sub: &'static [AttrDef],
    pub(crate) canonical: &'static [&'static str],
    pub(crate) reference_types: &'static [&'static str],
}

const fn attr(name: &'static str, ty: AttrType, description: &'static str) -> AttrDef {
    AttrDef {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        description,
        sub: &[],
        canonical: &[],
        reference_types: &[],
    }
}

const fn string(name: &'static str, description: &'static str) -> AttrDef {
    attr(name, AttrType::String, description)
}

impl AttrDef {
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    const fn subs(mut self, sub: &'static [AttrDef]) -> Self {
        self.sub = sub;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical = values;
        self
    }
    const fn refs(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }

    /// Case-insensitive lookup of a sub-attribute definition.
    pub(crate) fn sub_attr(&self, name: &str) -> Option<&'static AttrDef> {
        find(self.sub, name)
    }

    pub(crate) fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }
}

/// Case-insensitive lookup in a definition table.
pub(crate) fn find(defs: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

pub(crate) const PRIMARY: AttrDef = attr(
    "primary",
    AttrType::Boolean,
    "A Boolean value indicating the 'primary' or preferred attribute value for this attribute. The primary attribute value 'true' MUST appear no more than once.",
);
const DISPLAY: AttrDef = string(
    "display",
    "A human-readable name, primarily used for display purposes.",
);

const NAME_SUBS: &[AttrDef] = &[
    string(
        "formatted",
        "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display.",
    ),
    string(
        "familyName",
        "The family name of the User, or last name in most Western languages.",
    ),
    string(
        "givenName",
        "The given name of the User, or first name in most Western languages.",
    ),
    string("middleName", "The middle name(s) of the User."),
    string(
        "honorificPrefix",
        "The honorific prefix(es) of the User, or title in most Western languages.",
    ),
    string(
        "honorificSuffix",
        "The honorific suffix(es) of the User, or suffix in most Western languages.",
    ),
];

const EMAIL_SUBS: &[AttrDef] = &[
    string("value", "Email address for the User."),
    DISPLAY,
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'work' or 'home'.",
    )
    .canonical(&["work", "home", "other"]),
    PRIMARY,
];

const PHONE_SUBS: &[AttrDef] = &[
    string("value", "Phone number of the User."),
    DISPLAY,
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'work', 'home', 'mobile'.",
    )
    .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    PRIMARY,
];

const IM_SUBS: &[AttrDef] = &[
    string("value", "Instant messaging address for the User."),
    DISPLAY,
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'aim', 'gtalk', 'xmpp'.",
    )
    .canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    PRIMARY,
];

const PHOTO_SUBS: &[AttrDef] = &[
    attr("value", AttrType::Reference, "URL of a photo of the User.").refs(&["external"]),
    DISPLAY,
    string(
        "type",
        "A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.",
    )
    .canonical(&["photo", "thumbnail"]),
    PRIMARY,
];

const ADDRESS_SUBS: &[AttrDef] = &[
    string(
        "formatted",
        "The full mailing address, formatted for display or use with a mailing label.",
    ),
    string(
        "streetAddress",
        "The full street address component, which may include house number, street name, P.O. box, and multi-line extended street address information.",
    ),
    string("locality", "The city or locality component."),
    string("region", "The state or region component."),
    string("postalCode", "The zip code or postal code component."),
    string("country", "The country name component."),
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'work' or 'home'.",
    )
    .canonical(&["work", "home", "other"]),
    PRIMARY,
];

const USER_GROUP_SUBS: &[AttrDef] = &[
    string("value", "The identifier of the User's group.").mutability(Mutability::ReadOnly),
    attr(
        "$ref",
        AttrType::Reference,
        "The URI of the corresponding 'Group' resource to which the user belongs.",
    )
    .refs(&["User", "Group"])
    .mutability(Mutability::ReadOnly),
    DISPLAY.mutability(Mutability::ReadOnly),
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.",
    )
    .canonical(&["direct", "indirect"])
    .mutability(Mutability::ReadOnly),
];

const GENERIC_MULTI_SUBS: &[AttrDef] = &[
    string("value", "The value of the attribute."),
    DISPLAY,
    string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const CERT_SUBS: &[AttrDef] = &[
    attr(
        "value",
        AttrType::Binary,
        "The value of an X.509 certificate.",
    ),
    DISPLAY,
    string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

/// `externalId` is a common attribute (RFC 7643 §3.1), but it is listed in
/// the User and Group schemas too: Entra's gallery validator flattens
/// `/Schemas` and expects every mapped attribute, including the default
/// `mailNickname → externalId` mapping, to be found there.
const EXTERNAL_ID: AttrDef = string(
    "externalId",
    "A String that is an identifier for the resource as defined by the provisioning client.",
)
.case_exact();

/// Core User attributes (RFC 7643 §4.1), in RFC order.
pub(crate) static USER_ATTRS: &[AttrDef] = &[
    string("userName", "Unique identifier for the User, typically used by the user to directly authenticate to the service provider. Each User MUST include a non-empty userName value.")
        .required()
        .unique(),
    attr("name", AttrType::Complex, "The components of the user's real name.").subs(NAME_SUBS),
    string("displayName", "The name of the User, suitable for display to end-users."),
    string("nickName", "The casual way to address the user in real life."),
    attr("profileUrl", AttrType::Reference, "A fully qualified URL pointing to a page representing the User's online profile.").refs(&["external"]),
    string("title", "The user's title, such as \"Vice President\"."),
    string("userType", "Used to identify the relationship between the organization and the user."),
    string("preferredLanguage", "Indicates the User's preferred written or spoken language."),
    string("locale", "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations."),
    string("timezone", "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
    attr("active", AttrType::Boolean, "A Boolean value indicating the User's administrative status."),
    string("password", "The User's cleartext password.")
        .mutability(Mutability::WriteOnly)
        .returned(Returned::Never),
    attr("emails", AttrType::Complex, "Email addresses for the user.").multi().subs(EMAIL_SUBS),
    attr("phoneNumbers", AttrType::Complex, "Phone numbers for the User.").multi().subs(PHONE_SUBS),
    attr("ims", AttrType::Complex, "Instant messaging addresses for the User.").multi().subs(IM_SUBS),
    attr("photos", AttrType::Complex, "URLs of photos of the User.").multi().subs(PHOTO_SUBS),
    attr("addresses", AttrType::Complex, "A physical mailing address for this User.").multi().subs(ADDRESS_SUBS),
    attr("groups", AttrType::Complex, "A list of groups to which the user belongs.")
        .multi()
        .subs(USER_GROUP_SUBS)
        .mutability(Mutability::ReadOnly),
    attr("entitlements", AttrType::Complex, "A list of entitlements for the User that represent a thing the User has.").multi().subs(GENERIC_MULTI_SUBS),
    attr("roles", AttrType::Complex, "A list of roles for the User that collectively represent who the User is.").multi().subs(GENERIC_MULTI_SUBS),
    attr("x509Certificates", AttrType::Complex, "A list of certificates issued to the User.").multi().subs(CERT_SUBS),
    EXTERNAL_ID,
];

const MEMBER_SUBS: &[AttrDef] = &[
    string("value", "Identifier of the member of this Group.").mutability(Mutability::Immutable),
    attr(
        "$ref",
        AttrType::Reference,
        "The URI corresponding to a SCIM resource that is a member of this Group.",
    )
    .refs(&["User", "Group"])
    .mutability(Mutability::Immutable),
    string(
        "type",
        "A label indicating the type of resource, e.g., 'User' or 'Group'.",
    )
    .canonical(&["User", "Group"])
    .mutability(Mutability::Immutable),
    DISPLAY.mutability(Mutability::ReadOnly),
];

/// Core Group attributes (RFC 7643 §4.2). `displayName` is marked unique
/// because Entra requires group display names to be unique.
pub(crate) static GROUP_ATTRS: &[AttrDef] = &[
    string("displayName", "A human-readable name for the Group.")
        .required()
        .unique(),
    attr(
        "members",
        AttrType::Complex,
        "A list of members of the Group.",
    )
    .multi()
    .subs(MEMBER_SUBS),
    EXTERNAL_ID,
];

/// Only the manager's id is kept (Entra reads `manager` back as `{"value": id}`), so `$ref`
/// is published readOnly: a client's `$ref` is ignored, as RFC 7644 §3.3 has it for
/// readOnly attributes, instead of silently dropped from a readWrite one.
const MANAGER_SUBS: &[AttrDef] = &[
    string(
        "value",
        "The id of the SCIM resource representing the User's manager.",
    ),
    attr(
        "$ref",
        AttrType::Reference,
        "The URI of the SCIM resource representing the User's manager.",
    )
    .refs(&["User"])
    .mutability(Mutability::ReadOnly),
    string("displayName", "The displayName of the User's manager.")
        .mutability(Mutability::ReadOnly),
];

/// Enterprise User extension attributes (RFC 7643 §4.3).
pub(crate) static ENTERPRISE_ATTRS: &[AttrDef] = &[
    string(
        "employeeNumber",
        "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization.",
    ),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    attr("manager", AttrType::Complex, "The User's manager.").subs(MANAGER_SUBS),
];

const META_SUBS: &[AttrDef] = &[
    string(
        "resourceType",
        "The name of the resource type of the resource.",
    ),
    attr(
        "created",
        AttrType::DateTime,
        "The DateTime that the resource was added to the service provider.",
    ),
    attr(
        "lastModified",
        AttrType::DateTime,
        "The most recent DateTime that the details of this resource were updated at the service provider.",
    ),
    attr(
        "location",
        AttrType::Reference,
        "The URI of the resource being returned.",
    )
    .refs(&["uri"]),
    string("version", "The version of the resource being returned.").case_exact(),
];

/// Common attributes (RFC 7643 §3.1) that are server-owned.
pub(crate) static COMMON_ATTRS: &[AttrDef] = &[
    string(
        "id",
        "A unique identifier for a SCIM resource as defined by the service provider.",
    )
    .case_exact()
    .mutability(Mutability::ReadOnly)
    .returned(Returned::Always)
    .unique(),
    EXTERNAL_ID,
    attr(
        "meta",
        AttrType::Complex,
        "A complex attribute containing resource metadata.",
    )
    .subs(META_SUBS)
    .mutability(Mutability::ReadOnly),
];

/// Definition of a top-level attribute of a User or Group resource.
pub(crate) fn core_attr(name: &str) -> Option<&'static AttrDef> {
    find(USER_ATTRS, name)
        .or_else(|| find(GROUP_ATTRS, name))
        .or_else(|| find(COMMON_ATTRS, name))
}

/// Definition of an enterprise extension attribute.
pub(crate) fn enterprise_attr(name: &str) -> Option<&'static AttrDef> {
    find(ENTERPRISE_ATTRS, name)
}

/// Definition of an attribute stored under `urn` (None for unknown extensions).
pub(crate) fn attr_in(urn: Option<&str>, name: &str) -> Option<&'static AttrDef> {
    match urn {
        None => core_attr(name),
        Some(u) if is_core_urn(u) => core_attr(name),
        Some(u) if is_enterprise_urn(u) => enterprise_attr(name),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_case_insensitive() {
        assert_eq!(core_attr("USERNAME").map(|d| d.name), Some("userName"));
        assert_eq!(core_attr("members").map(|d| d.name), Some("members"));
        assert_eq!(
            core_attr("name")
                .and_then(|d| d.sub_attr("FamilyName"))
                .map(|d| d.name),
            Some("familyName")
        );
        assert_eq!(enterprise_attr("Manager").map(|d| d.name), Some("manager"));
        assert!(attr_in(Some("urn:x:custom:2.0:User"), "tag").is_none());
    }

    #[test]
    fn urn_helpers() {
        assert!(is_core_urn("URN:ietf:params:scim:schemas:core:2.0:user"));
        assert!(is_enterprise_urn(SCHEMA_ENTERPRISE_USER));
        assert!(looks_like_urn("Urn:x"));
        assert!(!looks_like_urn("ur"));
    }
}
