//! Typed records: an entity is declared once, with [`entity!`](crate::entity), as a
//! Rust struct whose field types fix each field's kind. The macro generates both the
//! [`EntityDef`] that storage, indexes, lists, forms, the API and permissions read, and
//! the struct that modules and pages read and write — so a renamed or misspelt field is
//! a compile error, and a status is an enum declared with [`choice!`](crate::choice).
//!
//! Stored records stay self-describing maps keyed by field name (see `record.rs`): a
//! struct is a view of a record, not its storage format. Reading a record into a
//! struct fails, with a message naming the record and the field, only if a required
//! field is missing or holds another kind of value; fields the struct does not know are
//! kept untouched by [`Command::modify`](crate::Command::modify).
//!
//! Invariants:
//! * A field's kind comes from its declared type ([`FieldType::KIND`]), and whether it
//!   is required from whether that type is an `Option` ([`FieldType::REQUIRED`]): the
//!   struct and the definition cannot disagree.
//! * A choice field's options are its enum's variants ([`Options::OPTIONS`]), in order.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use time::OffsetDateTime;

use crate::entity::{EntityDef, FieldKind};
use crate::error::KernelError;
use crate::record::Record;
use crate::value::Value;

/// The Rust type a field is declared with: it fixes the field's kind, whether it is
/// required, and the type Rust code sees ([`FieldType::Value`]).
pub trait FieldType {
    /// How the field is stored, parsed and shown.
    const KIND: FieldKind;
    /// Whether every record must have a value; `Option<T>` fields need not.
    const REQUIRED: bool = true;
    /// What a struct field of this type holds.
    type Value: std::fmt::Debug + Clone + PartialEq;
    /// The stored value as Rust sees it, or why it does not fit.
    fn read(value: &Value) -> Result<Self::Value, Misfit>;
    /// The value as the kernel stores it ([`Value::Empty`] for nothing).
    fn write(value: &Self::Value) -> Value;
}

/// Why a stored value does not fit a field's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfit {
    /// A required field has no value.
    Missing,
    /// The value is of another kind, or not one of a choice's options.
    Kind,
}

/// An enum whose variants are a choice field's options.
pub trait Options: Sized + Copy + PartialEq + std::fmt::Debug + 'static {
    /// The options as stored and shown, in the order of [`Options::ALL`].
    const OPTIONS: &'static [&'static str];
    /// Every variant, in declaration order.
    const ALL: &'static [Self];
    /// The option as stored and shown.
    fn name(self) -> &'static str;
    /// The variant stored as `name`, if any.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }
}

/// An entity a reference field may point at: a typed entity (the macro implements
/// this) or, for another module's entity that this module may not name, a marker
/// declared with [`entity_name!`](crate::entity_name).
pub trait Named {
    const NAME: &'static str;
}

/// An entity declared with [`entity!`](crate::entity): its definition and how a
/// record reads into, and writes from, its struct.
pub trait Typed: Sized + Clone {
    /// The generated definition.
    fn def() -> &'static EntityDef;
    /// The record's fields as the struct (the envelope — id, version — is in [`Row`]).
    fn from_record(rec: &Record) -> Result<Self, KernelError>;
    /// Every field's value, [`Value::Empty`] for an empty one.
    fn to_values(&self) -> BTreeMap<&'static str, Value>;
}

/// The declared field types (`code: Text<20>`, `parent: Option<Ref<Account>>`).
pub mod field {
    use std::marker::PhantomData;

    /// One line of text of at most `MAX` characters: a `String`.
    pub struct Text<const MAX: usize>;
    /// Several lines of text: a `String`.
    pub struct LongText;
    /// An e-mail address: a `String`.
    pub struct Email;
    /// A phone number: a `String`.
    pub struct Phone;
    /// A whole number in `MIN..=MAX`: an `i64`.
    pub struct Int<const MIN: i64, const MAX: i64>;
    /// An exact amount in minor units (cents): an `i64`.
    pub struct Money;
    /// A flag: a `bool`; a record without it reads as `false`.
    pub struct Bool;
    /// A calendar date: a `time::Date`.
    pub struct Date;
    /// One of an enum's options: the enum.
    pub struct Choice<E>(PhantomData<E>);
    /// The id of a record of entity `T` in the same company: a `u64`.
    pub struct Ref<T>(PhantomData<T>);
    /// Role permissions (`customer:rcwdx, contact:r`): a `String`.
    pub struct Grants;
    /// A write-only secret, never stored in the record: reads as `()`.
    pub struct Password;
}

fn text(value: &Value) -> Result<String, Misfit> {
    match value {
        Value::Text(s) if !s.is_empty() => Ok(s.clone()),
        Value::Empty | Value::Text(_) => Err(Misfit::Missing),
        _ => Err(Misfit::Kind),
    }
}

fn write_text(s: &str) -> Value {
    if s.is_empty() {
        Value::Empty
    } else {
        Value::Text(s.to_owned())
    }
}

macro_rules! text_types {
    ($($t:ty => $kind:expr),* $(,)?) => {$(
        impl FieldType for $t {
            const KIND: FieldKind = $kind;
            type Value = String;
            fn read(value: &Value) -> Result<String, Misfit> {
                text(value)
            }
            fn write(value: &String) -> Value {
                write_text(value)
            }
        }
    )*};
}

text_types! {
    field::LongText => FieldKind::LongText,
    field::Email => FieldKind::Email,
    field::Phone => FieldKind::Phone,
    field::Grants => FieldKind::Grants,
}

impl<const MAX: usize> FieldType for field::Text<MAX> {
    const KIND: FieldKind = FieldKind::Text { max: MAX };
    type Value = String;
    fn read(value: &Value) -> Result<String, Misfit> {
        text(value)
    }
    fn write(value: &String) -> Value {
        write_text(value)
    }
}

impl<const MIN: i64, const MAX: i64> FieldType for field::Int<MIN, MAX> {
    const KIND: FieldKind = FieldKind::Int { min: MIN, max: MAX };
    type Value = i64;
    fn read(value: &Value) -> Result<i64, Misfit> {
        match value {
            Value::Int(n) => Ok(*n),
            Value::Empty => Err(Misfit::Missing),
            _ => Err(Misfit::Kind),
        }
    }
    fn write(value: &i64) -> Value {
        Value::Int(*value)
    }
}

impl FieldType for field::Money {
    const KIND: FieldKind = FieldKind::Money;
    type Value = i64;
    fn read(value: &Value) -> Result<i64, Misfit> {
        match value {
            Value::Money(n) => Ok(*n),
            Value::Empty => Err(Misfit::Missing),
            _ => Err(Misfit::Kind),
        }
    }
    fn write(value: &i64) -> Value {
        Value::Money(*value)
    }
}

impl FieldType for field::Bool {
    const KIND: FieldKind = FieldKind::Bool;
    /// A form leaves an unticked box out and older records may lack a newer flag:
    /// both read as `false`, so a flag is never required.
    const REQUIRED: bool = false;
    type Value = bool;
    fn read(value: &Value) -> Result<bool, Misfit> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::Empty => Ok(false),
            _ => Err(Misfit::Kind),
        }
    }
    fn write(value: &bool) -> Value {
        Value::Bool(*value)
    }
}

impl FieldType for field::Date {
    const KIND: FieldKind = FieldKind::Date;
    type Value = time::Date;
    fn read(value: &Value) -> Result<time::Date, Misfit> {
        match value {
            Value::Date(d) => Ok(*d),
            Value::Empty => Err(Misfit::Missing),
            _ => Err(Misfit::Kind),
        }
    }
    fn write(value: &time::Date) -> Value {
        Value::Date(*value)
    }
}

impl<E: Options> FieldType for field::Choice<E> {
    const KIND: FieldKind = FieldKind::Choice(E::OPTIONS);
    type Value = E;
    fn read(value: &Value) -> Result<E, Misfit> {
        match value {
            Value::Text(s) if !s.is_empty() => E::from_name(s).ok_or(Misfit::Kind),
            Value::Empty | Value::Text(_) => Err(Misfit::Missing),
            _ => Err(Misfit::Kind),
        }
    }
    fn write(value: &E) -> Value {
        Value::Text(value.name().to_owned())
    }
}

impl<T: Named> FieldType for field::Ref<T> {
    const KIND: FieldKind = FieldKind::Ref(T::NAME);
    type Value = u64;
    fn read(value: &Value) -> Result<u64, Misfit> {
        match value {
            Value::Ref(id) => Ok(*id),
            Value::Empty => Err(Misfit::Missing),
            _ => Err(Misfit::Kind),
        }
    }
    fn write(value: &u64) -> Value {
        Value::Ref(*value)
    }
}

impl FieldType for field::Password {
    const KIND: FieldKind = FieldKind::Password;
    const REQUIRED: bool = false;
    type Value = ();
    fn read(_: &Value) -> Result<(), Misfit> {
        Ok(())
    }
    fn write(_: &()) -> Value {
        Value::Empty
    }
}

impl<T: FieldType> FieldType for Option<T> {
    const KIND: FieldKind = T::KIND;
    const REQUIRED: bool = false;
    type Value = Option<T::Value>;
    fn read(value: &Value) -> Result<Option<T::Value>, Misfit> {
        match T::read(value) {
            Ok(v) => Ok(Some(v)),
            Err(Misfit::Missing) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn write(value: &Option<T::Value>) -> Value {
        value.as_ref().map_or(Value::Empty, T::write)
    }
}

/// A field's name as stored: the Rust identifier without a raw prefix (`r#type` is
/// stored as `type`).
pub const fn field_name(ident: &'static str) -> &'static str {
    match ident.as_bytes() {
        // Cutting an ASCII prefix leaves valid UTF-8, so the error arm is never taken.
        [b'r', b'#', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(name) => name,
            Err(_) => ident,
        },
        _ => ident,
    }
}

/// Reads one field of `rec` as `T` (used by the code [`entity!`](crate::entity)
/// generates).
pub fn read<T: FieldType>(
    rec: &Record,
    def: &EntityDef,
    name: &'static str,
) -> Result<T::Value, KernelError> {
    T::read(rec.get(name)).map_err(|misfit| {
        let problem = match misfit {
            Misfit::Missing => "has no value",
            Misfit::Kind => "holds a value of another kind",
        };
        KernelError::Internal(format!(
            "{} #{}: the field \"{name}\" {problem}; the record was written by another \
             version or is damaged",
            def.label, rec.id
        ))
    })
}

/// A stored record read as its entity's struct: the envelope (id, version, who and
/// when) and the fields, which it dereferences to (`row.number`, `row.status`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row<T> {
    pub id: u64,
    pub company: u64,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_by: u64,
    pub updated_by: u64,
    pub fields: T,
}

impl<T: Typed> Row<T> {
    /// `rec` as a row; `rec` must be a record of `T`'s entity.
    pub fn of(rec: &Record) -> Result<Row<T>, KernelError> {
        Ok(Row {
            id: rec.id,
            company: rec.company,
            version: rec.version,
            created_at: rec.created_at,
            updated_at: rec.updated_at,
            created_by: rec.created_by,
            updated_by: rec.updated_by,
            fields: T::from_record(rec)?,
        })
    }

    /// Every record as a row, or the first that does not read.
    pub fn all(recs: &[Record]) -> Result<Vec<Row<T>>, KernelError> {
        recs.iter().map(Row::of).collect()
    }

    /// The record's title, as lists and links show it.
    pub fn title(&self) -> String {
        let def = T::def();
        match self.fields.to_values().remove(def.title_field) {
            Some(v) if !v.is_empty() => v.display(),
            _ => format!("{} #{}", def.label, self.id),
        }
    }
}

impl<T> Deref for Row<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.fields
    }
}

impl<T> DerefMut for Row<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.fields
    }
}

/// Declares a marker type for a reference to an entity by name:
/// `entity_name!(pub Customer = "customer");` then `customer: Ref<Customer>`.
#[macro_export]
macro_rules! entity_name {
    ($(#[$meta:meta])* $vis:vis $marker:ident = $name:literal) => {
        $(#[$meta])*
        $vis enum $marker {}
        impl $crate::typed::Named for $marker {
            const NAME: &'static str = $name;
        }
    };
}

/// Makes an existing enum (a module's own domain type) the options of a choice field:
/// `options! { PaymentKind { CustomerReceipt = "Customer receipt", .. } }`. Every
/// variant must be listed; a missing one is a compile error (the `match` in `name`).
#[macro_export]
macro_rules! options {
    ($name:ident { $( $variant:ident $(= $text:literal)? ),+ $(,)? }) => {
        impl $crate::typed::Options for $name {
            const OPTIONS: &'static [&'static str] =
                &[$( $crate::choice!(@text $variant $($text)?) ),+];
            const ALL: &'static [Self] = &[$( Self::$variant ),+];
            fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $crate::choice!(@text $variant $($text)?) ),+
                }
            }
        }
    };
}

/// Declares an enum whose variants are a choice field's options. A variant is stored
/// and shown as its name, or as the text given after `=`:
///
/// ```
/// nexus_kernel::choice! {
///     /// Where an invoice stands.
///     pub enum InvoiceStatus { Open, PartlyPaid = "Partly paid", Paid }
/// }
/// assert_eq!(InvoiceStatus::PartlyPaid.to_string(), "Partly paid");
/// ```
#[macro_export]
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident $(= $text:literal)? ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        $crate::options! { $name { $( $variant $(= $text)? ),+ } }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::typed::Options::name(*self))
            }
        }
    };
    (@text $variant:ident $text:literal) => { $text };
    (@text $variant:ident) => { stringify!($variant) };
}

/// Declares an entity once: its definition (a `static` [`EntityDef`]) and its struct.
/// Each field is `name: Type = "Label"` followed by the [`FieldDef`](crate::FieldDef)
/// builder calls it needs (`.indexed()`, `.unique(..)`, `.list()`, `.help(..)`); the type
/// fixes the kind and whether the field is required (an `Option` is not). The title
/// and search fields are named as struct fields, so they are checked by the compiler.
///
/// ```
/// use nexus_kernel::{Creation, Unique};
/// use nexus_kernel::typed::field::{Choice, Date, Money, Text};
///
/// nexus_kernel::choice! { pub enum Status { Open, Closed } }
///
/// nexus_kernel::entity! {
///     /// A bill to pay.
///     pub struct Bill in BILL {
///         name: "bill", code: 900, module: "demo", label: "Bill", plural: "Bills",
///         title: number, search: [number], creation: Creation::ByRole,
///     }
///     fields {
///         number: Text<20> = "Number" .indexed().unique(Unique::PerCompany).list(),
///         due: Option<Date> = "Due" .list(),
///         total: Money = "Total",
///         status: Choice<Status> = "Status" .indexed(),
///     }
/// }
/// assert_eq!(BILL.field("due").map(|f| f.required), Some(false));
/// assert_eq!(BILL.field("total").map(|f| f.required), Some(true));
/// ```
#[macro_export]
macro_rules! entity {
    (
        $(#[$meta:meta])*
        $vis:vis struct $ty:ident in $def:ident {
            name: $name:literal,
            code: $code:literal,
            module: $module:literal,
            label: $label:literal,
            plural: $plural:literal,
            title: $title:ident,
            search: [$($search:ident),* $(,)?],
            creation: $creation:expr $(,)?
        }
        fields {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $fty:ty = $flabel:literal $( . $m:ident ( $($arg:expr),* ) )*
            ),+ $(,)?
        }
    ) => {
        #[doc = concat!("The definition of [`", stringify!($ty), "`].")]
        $vis static $def: $crate::EntityDef = $crate::EntityDef {
            name: $name,
            code: $code,
            label: $label,
            plural: $plural,
            module: $module,
            fields: &[$(
                $crate::FieldDef::typed::<$fty>(
                    $crate::typed::field_name(stringify!($field)),
                    $flabel,
                ) $( . $m ( $($arg),* ) )*
            ),+],
            title_field: $crate::typed::field_name(stringify!($title)),
            search_fields: &[$( $crate::typed::field_name(stringify!($search)) ),*],
            creation: $creation,
        };

        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $ty {
            $(
                $(#[$fmeta])*
                pub $field: <$fty as $crate::typed::FieldType>::Value,
            )+
        }

        impl $crate::typed::Named for $ty {
            const NAME: &'static str = $name;
        }

        impl $crate::typed::Typed for $ty {
            fn def() -> &'static $crate::EntityDef {
                &$def
            }

            fn from_record(rec: &$crate::Record) -> Result<Self, $crate::KernelError> {
                Ok($ty {$(
                    $field: $crate::typed::read::<$fty>(
                        rec,
                        &$def,
                        $crate::typed::field_name(stringify!($field)),
                    )?,
                )+})
            }

            fn to_values(&self) -> ::std::collections::BTreeMap<&'static str, $crate::Value> {
                ::std::collections::BTreeMap::from([$(
                    (
                        $crate::typed::field_name(stringify!($field)),
                        <$fty as $crate::typed::FieldType>::write(&self.$field),
                    ),
                )+])
            }
        }

        // The title and search fields are fields of the struct.
        const _: fn(&$ty) = |r| {
            let _ = (&r.$title, $( &r.$search, )*);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::field::{Bool, Choice, Date, Int, Money, Ref, Text};
    use super::*;
    use crate::Creation;

    crate::choice! {
        enum Status { Open, PartlyPaid = "Partly paid", Paid }
    }

    crate::entity_name!(Customer = "customer");

    crate::entity! {
        struct Bill in BILL {
            name: "bill", code: 900, module: "test", label: "Bill", plural: "Bills",
            title: number, search: [number, r#type], creation: Creation::ByRole,
        }
        fields {
            number: Text<20> = "Number" .indexed().list(),
            r#type: Option<Text<10>> = "Type",
            customer: Ref<Customer> = "Customer",
            parent: Option<Ref<Bill>> = "Parent",
            lines: Int<1, 99> = "Lines",
            total: Money = "Total" .help("in cents"),
            due: Option<Date> = "Due",
            paid: Bool = "Paid",
            status: Choice<Status> = "Status",
        }
    }

    fn bill() -> Bill {
        Bill {
            number: "B-1".into(),
            r#type: None,
            customer: 7,
            parent: Some(3),
            lines: 2,
            total: 1250,
            due: None,
            paid: false,
            status: Status::PartlyPaid,
        }
    }

    fn record(values: BTreeMap<&'static str, Value>) -> Record {
        Record {
            id: 5,
            company: 1,
            version: 1,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            created_by: 1,
            updated_by: 1,
            values,
            unknown: Vec::new(),
        }
    }

    #[test]
    fn the_definition_follows_the_declared_types() {
        assert_eq!(BILL.fields.len(), 9);
        let kind = |n: &str| BILL.field(n).map(|f| (f.kind, f.required));
        assert_eq!(kind("number"), Some((FieldKind::Text { max: 20 }, true)));
        assert_eq!(kind("type"), Some((FieldKind::Text { max: 10 }, false)));
        assert_eq!(kind("customer"), Some((FieldKind::Ref("customer"), true)));
        assert_eq!(kind("parent"), Some((FieldKind::Ref("bill"), false)));
        assert_eq!(
            kind("lines"),
            Some((FieldKind::Int { min: 1, max: 99 }, true))
        );
        assert_eq!(kind("paid"), Some((FieldKind::Bool, false)));
        assert_eq!(
            kind("status"),
            Some((FieldKind::Choice(&["Open", "Partly paid", "Paid"]), true))
        );
        assert_eq!(BILL.search_fields, ["number", "type"]);
        assert_eq!(BILL.title_field, "number");
        assert!(BILL.field("number").is_some_and(|f| f.indexed && f.list));
        assert_eq!(BILL.field("total").map(|f| f.help), Some("in cents"));
    }

    #[test]
    fn a_struct_round_trips_through_a_record() {
        let values = bill().to_values();
        assert_eq!(values.get("type"), Some(&Value::Empty));
        assert_eq!(
            values.get("status"),
            Some(&Value::Text("Partly paid".into()))
        );
        let mut stored = values.clone();
        stored.retain(|_, v| !v.is_empty());
        let row = Row::<Bill>::of(&record(stored)).expect("reads");
        assert_eq!(row.fields, bill());
        assert_eq!(row.status, Status::PartlyPaid);
        assert_eq!(row.title(), "B-1");
    }

    #[test]
    fn a_record_that_does_not_fit_names_the_record_and_the_field() {
        let mut values = bill().to_values();
        values.remove("total");
        let err = Row::<Bill>::of(&record(values)).expect_err("no total");
        assert!(err.to_string().contains("Bill #5"), "{err}");
        assert!(err.to_string().contains("\"total\" has no value"), "{err}");

        let mut values = bill().to_values();
        values.insert("status", Value::Text("Lost".into()));
        let err = Row::<Bill>::of(&record(values)).expect_err("unknown option");
        assert!(err.to_string().contains("\"status\""), "{err}");

        let mut values = bill().to_values();
        values.remove("paid");
        let row = Row::<Bill>::of(&record(values)).expect("a missing flag is false");
        assert!(!row.paid);
    }

    #[test]
    fn raw_identifiers_are_stored_without_their_prefix() {
        assert_eq!(field_name("r#type"), "type");
        assert_eq!(field_name("number"), "number");
        assert_eq!(Status::from_name("Partly paid"), Some(Status::PartlyPaid));
        assert_eq!(Status::from_name("partly paid"), None);
    }
}
