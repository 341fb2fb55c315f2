//! Entity definitions: one static description per entity drives storage, indexes,
//! validation, list and form views, the REST API and permissions.

use crate::perm::Grants;
use crate::value::{Value, parse_date, parse_money};

/// What kind of data a field holds, and so how it is parsed, stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// One line of text, at most `max` characters.
    Text {
        max: usize,
    },
    /// Several lines of text.
    LongText,
    Email,
    Phone,
    /// A whole number in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// An exact amount with two decimals.
    Money,
    Bool,
    Date,
    /// One of a fixed list of options.
    Choice(&'static [&'static str]),
    /// The id of a record of another entity in the same company.
    Ref(&'static str),
    /// Role permissions, e.g. `customer:rcwdx, contact:r`.
    Grants,
    /// Write-only secret; hashed with argon2id into the credentials table, never stored
    /// in the record, never shown.
    Password,
}

impl FieldKind {
    /// The HTML input type a form uses for this kind.
    pub fn input_type(self) -> &'static str {
        match self {
            FieldKind::Email => "email",
            FieldKind::Phone => "tel",
            FieldKind::Int { .. } => "number",
            FieldKind::Date => "date",
            FieldKind::Password => "password",
            _ => "text",
        }
    }
}

/// Where a unique field must be unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    No,
    /// Unique among the company's records of this entity.
    PerCompany,
    /// Unique across every company on the box (e.g. login names).
    Global,
}

#[derive(Debug)]
pub struct FieldDef {
    /// Stable name: the key in stored records and the API. Never rename one.
    pub name: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// Kept in a secondary index, so lists can sort by it quickly.
    pub indexed: bool,
    pub unique: Unique,
    /// Shown as a column in list views.
    pub list: bool,
    /// Help shown under the input.
    pub help: &'static str,
    /// Written by the appliance, never by input (when a password was set, which user a
    /// membership names): writes ignore it like `id` and `version`, forms show it
    /// without an input.
    pub by_appliance: bool,
    /// Seen and set only by roles granted this field itself (`customer.credit_limit:r`
    /// to see it, `:w` to set it) or everything (`*`); for everyone else the kernel
    /// leaves it out of every read — forms, lists, the API, exports, history, tools —
    /// and refuses to filter, sort or write by it. Optional, not unique, neither the
    /// title nor a search field (the registry checks), so hiding it hides all of it.
    pub guarded: bool,
}

impl FieldDef {
    pub const fn new(name: &'static str, label: &'static str, kind: FieldKind) -> FieldDef {
        FieldDef {
            name,
            label,
            kind,
            required: false,
            indexed: false,
            unique: Unique::No,
            list: false,
            help: "",
            by_appliance: false,
            guarded: false,
        }
    }
    /// A field declared with a Rust type (see [`entity!`](crate::entity)): the type
    /// gives its kind and whether it is required.
    pub const fn typed<T: crate::typed::FieldType>(
        name: &'static str,
        label: &'static str,
    ) -> FieldDef {
        let mut def = FieldDef::new(name, label, T::KIND);
        def.required = T::REQUIRED;
        def
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn indexed(mut self) -> Self {
        self.indexed = true;
        self
    }
    pub const fn unique(mut self, scope: Unique) -> Self {
        self.unique = scope;
        self
    }
    pub const fn list(mut self) -> Self {
        self.list = true;
        self
    }
    pub const fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }
    pub const fn by_appliance(mut self) -> Self {
        self.by_appliance = true;
        self
    }
    pub const fn guarded(mut self) -> Self {
        self.guarded = true;
        self
    }

    /// Whether the value lives in the record (a password does not).
    pub fn stored(&self) -> bool {
        self.kind != FieldKind::Password
    }

    /// Parses what a person typed into a form.
    pub fn parse_text(&self, raw: &str) -> Result<Value, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() && self.kind != FieldKind::Bool {
            return Ok(Value::Empty);
        }
        match self.kind {
            FieldKind::Text { max } => single_line(trimmed, max),
            FieldKind::LongText => long_text(raw.trim_end(), 20_000),
            FieldKind::Email => {
                let v = single_line(trimmed, 254)?;
                match trimmed.split_once('@') {
                    Some((user, host))
                        if !user.is_empty() && host.contains('.') && !host.ends_with('.') =>
                    {
                        Ok(v)
                    }
                    _ => Err(format!(
                        "\"{trimmed}\" is not an e-mail address like name@example.com"
                    )),
                }
            }
            FieldKind::Phone => {
                let ok = trimmed
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-()./".contains(c));
                if ok && trimmed.chars().any(|c| c.is_ascii_digit()) {
                    single_line(trimmed, 40)
                } else {
                    Err(format!("\"{trimmed}\" is not a phone number"))
                }
            }
            FieldKind::Int { min, max } => {
                let n: i64 = trimmed
                    .parse()
                    .map_err(|_| format!("\"{trimmed}\" is not a whole number"))?;
                if n < min || n > max {
                    return Err(format!("must be between {min} and {max}"));
                }
                Ok(Value::Int(n))
            }
            FieldKind::Money => parse_money(trimmed).map(Value::Money),
            FieldKind::Bool => match trimmed.to_ascii_lowercase().as_str() {
                "" | "false" | "off" | "no" | "0" => Ok(Value::Bool(false)),
                "true" | "on" | "yes" | "1" => Ok(Value::Bool(true)),
                _ => Err(format!("\"{trimmed}\" is not yes or no")),
            },
            FieldKind::Date => parse_date(trimmed).map(Value::Date),
            FieldKind::Choice(options) => options
                .iter()
                .find(|o| o.eq_ignore_ascii_case(trimmed))
                .map(|o| Value::Text((*o).to_string()))
                .ok_or_else(|| format!("choose one of: {}", options.join(", "))),
            FieldKind::Ref(_) => trimmed
                .trim_start_matches('#')
                .parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .map(Value::Ref)
                .ok_or_else(|| format!("\"{trimmed}\" is not a record id")),
            FieldKind::Grants => Grants::parse(trimmed).map(|g| Value::Text(g.to_string())),
            FieldKind::Password => {
                let chars = raw.chars().count();
                let mut distinct: Vec<char> = raw.chars().collect();
                distinct.sort_unstable();
                distinct.dedup();
                if chars < 10 {
                    Err("use at least 10 characters".into())
                } else if chars > 256 {
                    Err("use at most 256 characters".into())
                } else if distinct.len() < 5 {
                    Err(
                        "use at least 5 different characters (\"aaaaaaaaaa\" is guessed at once)"
                            .into(),
                    )
                } else if let Some(why) = crate::password::breached(raw) {
                    Err(why.into())
                } else {
                    Ok(Value::Text(raw.to_string()))
                }
            }
        }
    }

    /// Checks an already-typed value against this field's rules — the same limits the
    /// parsers apply — so that a module's own writes meet them too (one validation path
    /// for every write).
    pub fn check(&self, value: &Value) -> Result<(), String> {
        match (self.kind, value) {
            (_, Value::Empty) => Ok(()),
            (FieldKind::Text { max }, Value::Text(s)) => single_line(s, max).map(drop),
            (FieldKind::Email, Value::Text(s)) => single_line(s, 254).map(drop),
            (FieldKind::Phone, Value::Text(s)) => single_line(s, 40).map(drop),
            (FieldKind::LongText | FieldKind::Grants, Value::Text(s)) => {
                long_text(s, 20_000).map(drop)
            }
            (FieldKind::Choice(options), Value::Text(s)) => {
                if options.contains(&s.as_str()) {
                    Ok(())
                } else {
                    Err(format!("choose one of: {}", options.join(", ")))
                }
            }
            (FieldKind::Int { min, max }, Value::Int(n)) => {
                if (min..=max).contains(n) {
                    Ok(())
                } else {
                    Err(format!("must be between {min} and {max}"))
                }
            }
            (FieldKind::Ref(_), Value::Ref(id)) if *id > 0 => Ok(()),
            (FieldKind::Money, Value::Money(_))
            | (FieldKind::Bool, Value::Bool(_))
            | (FieldKind::Date, Value::Date(_)) => Ok(()),
            _ => Err(format!("{} cannot hold this kind of value", self.label)),
        }
    }

    /// Parses a JSON API value; types must match (a number for a number field), and
    /// money comes as a decimal string so nothing is lost to floating point.
    pub fn parse_json(&self, raw: &serde_json::Value) -> Result<Value, String> {
        use serde_json::Value as J;
        match (self.kind, raw) {
            (_, J::Null) => Ok(Value::Empty),
            (FieldKind::Int { .. }, J::Number(n)) => match n.as_i64() {
                Some(i) => self.parse_text(&i.to_string()),
                None => Err("expected a whole number".into()),
            },
            (FieldKind::Int { .. }, _) => Err("expected a whole number".into()),
            (FieldKind::Money, J::String(s)) => self.parse_text(s),
            (FieldKind::Money, J::Number(n)) if n.is_i64() => Err(format!(
                "send money as a string like \"{n}.00\", so no precision is lost"
            )),
            (FieldKind::Money, _) => {
                Err("send money as a decimal string like \"12.34\", so no precision is lost".into())
            }
            (FieldKind::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
            (FieldKind::Bool, _) => Err("expected true or false".into()),
            (FieldKind::Ref(_), J::Number(n)) => match n.as_u64() {
                Some(id) if id > 0 => Ok(Value::Ref(id)),
                _ => Err("expected a record id (a positive whole number)".into()),
            },
            (FieldKind::Ref(_), _) => Err("expected a record id (a positive whole number)".into()),
            (_, J::String(s)) => self.parse_text(s),
            (_, _) => Err("expected a string".into()),
        }
    }
}

fn single_line(s: &str, max: usize) -> Result<Value, String> {
    if s.chars().any(char::is_control) {
        return Err("must be a single line without control characters".into());
    }
    long_text(s, max)
}

fn long_text(s: &str, max: usize) -> Result<Value, String> {
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("contains control characters".into());
    }
    let n = s.chars().count();
    if n > max {
        return Err(format!("use at most {max} characters (this has {n})"));
    }
    Ok(Value::Text(s.to_string()))
}

/// Who may create records of an entity at all, beyond role grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// Anyone whose role grants `create`.
    ByRole,
    /// Only the system (CLI, setup): e.g. companies, the tenants themselves.
    SystemOnly,
    /// Only its module's own commands (e.g. posted journal entries): the generic
    /// create, edit and delete refuse everyone with this message, which says how such
    /// a record is made or undone instead.
    Module(&'static str),
}

#[derive(Debug)]
pub struct EntityDef {
    /// Stable, URL-safe name (`customer`); also the permission key.
    pub name: &'static str,
    /// Stable numeric code used in storage keys. Never reuse or change one.
    pub code: u16,
    pub label: &'static str,
    pub plural: &'static str,
    /// The module it belongs to in the navigation.
    pub module: &'static str,
    pub fields: &'static [FieldDef],
    /// The field that names a record in titles, links and references.
    pub title_field: &'static str,
    /// Fields the list's quick search looks in.
    pub search_fields: &'static [&'static str],
    pub creation: Creation,
}

impl EntityDef {
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field naming who owns a record (`owner`, a reference to a user), which
    /// record rules (`customer:rw@own`) follow.
    pub fn owner(&self) -> Option<&'static FieldDef> {
        self.field("owner")
            .filter(|f| f.kind == FieldKind::Ref("user"))
    }

    pub fn field_index(&self, name: &str) -> Option<u8> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .and_then(|i| u8::try_from(i).ok())
    }

    pub fn list_fields(&self) -> impl Iterator<Item = &'static FieldDef> + use<'_> {
        self.fields.iter().filter(|f| f.list)
    }
}
