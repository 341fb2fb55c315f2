//! Records and their stored form.
//!
//! A record is stored as a CBOR map keyed by field name, so it describes itself:
//! a newer definition that adds a field reads old records (the field is empty), and an
//! older binary that meets a field it does not know keeps it untouched when it rewrites
//! the record (replication between boxes of different versions, rollbacks).

use std::collections::BTreeMap;

use ciborium::Value as Cbor;
use time::OffsetDateTime;

use crate::entity::{EntityDef, FieldKind};
use crate::error::KernelError;
use crate::value::{Value, format_date, parse_date};

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub company: u64,
    /// Starts at 1 and grows by one per saved change; a write names the version it was
    /// based on, and a stale one is refused.
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_by: u64,
    pub updated_by: u64,
    pub values: BTreeMap<&'static str, Value>,
    /// Fields this binary does not know, kept as they were.
    pub(crate) unknown: Vec<(String, Cbor)>,
}

impl Record {
    pub fn get(&self, field: &str) -> &Value {
        self.values.get(field).unwrap_or(&Value::Empty)
    }

    pub fn title(&self, def: &EntityDef) -> String {
        match self.get(def.title_field) {
            Value::Empty => format!("{} #{}", def.label, self.id),
            v => v.display(),
        }
    }

    /// The record as the JSON API shows it, every stored field.
    pub fn to_json(&self, def: &EntityDef) -> serde_json::Value {
        self.json_of(def, |_| true)
    }

    /// The record as the JSON API shows it to `who`: a guarded field they may not see
    /// is not there at all.
    pub fn to_json_for(&self, def: &EntityDef, who: &crate::Principal) -> serde_json::Value {
        self.json_of(def, |f| who.sees(def, f))
    }

    fn json_of(
        &self,
        def: &EntityDef,
        shown: impl Fn(&crate::FieldDef) -> bool,
    ) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("id".into(), self.id.into());
        map.insert("version".into(), self.version.into());
        map.insert("created_at".into(), rfc3339(self.created_at).into());
        map.insert("updated_at".into(), rfc3339(self.updated_at).into());
        for f in def.fields.iter().filter(|f| f.stored() && shown(f)) {
            map.insert(f.name.into(), self.get(f.name).to_json());
        }
        serde_json::Value::Object(map)
    }

    /// Stored fields as a JSON map, for audit before/after images.
    pub(crate) fn audit_image(
        &self,
        def: &EntityDef,
    ) -> serde_json::Map<String, serde_json::Value> {
        def.fields
            .iter()
            .filter(|f| f.stored())
            .filter(|f| !self.get(f.name).is_empty())
            .map(|f| (f.name.to_string(), self.get(f.name).to_json()))
            .collect()
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, KernelError> {
        let mut fields: Vec<(Cbor, Cbor)> = self
            .values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (Cbor::Text((*k).to_string()), value_to_cbor(v)))
            .collect();
        fields.extend(
            self.unknown
                .iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), v.clone())),
        );
        let map = Cbor::Map(vec![
            (Cbor::Text("id".into()), Cbor::Integer(self.id.into())),
            (Cbor::Text("co".into()), Cbor::Integer(self.company.into())),
            (Cbor::Text("v".into()), Cbor::Integer(self.version.into())),
            (
                Cbor::Text("ca".into()),
                Cbor::Integer(unix_ms(self.created_at).into()),
            ),
            (
                Cbor::Text("ua".into()),
                Cbor::Integer(unix_ms(self.updated_at).into()),
            ),
            (
                Cbor::Text("cb".into()),
                Cbor::Integer(self.created_by.into()),
            ),
            (
                Cbor::Text("ub".into()),
                Cbor::Integer(self.updated_by.into()),
            ),
            (Cbor::Text("f".into()), Cbor::Map(fields)),
        ]);
        let mut out = Vec::with_capacity(256);
        ciborium::into_writer(&map, &mut out)
            .map_err(|e| KernelError::Internal(format!("encoding a record: {e}")))?;
        Ok(out)
    }

    pub(crate) fn decode(def: &'static EntityDef, bytes: &[u8]) -> Result<Record, KernelError> {
        let corrupt = |what: &str| {
            KernelError::Internal(format!("a stored {} record is damaged: {what}", def.name))
        };
        let value: Cbor = ciborium::from_reader(bytes).map_err(|e| corrupt(&e.to_string()))?;
        let Cbor::Map(entries) = value else {
            return Err(corrupt("not a map"));
        };
        let mut rec = Record {
            id: 0,
            company: 0,
            version: 0,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            created_by: 0,
            updated_by: 0,
            values: BTreeMap::new(),
            unknown: Vec::new(),
        };
        for (k, v) in entries {
            let Cbor::Text(k) = k else { continue };
            match (k.as_str(), v) {
                ("id", Cbor::Integer(i)) => rec.id = int_u64(i),
                ("co", Cbor::Integer(i)) => rec.company = int_u64(i),
                ("v", Cbor::Integer(i)) => rec.version = int_u64(i),
                ("ca", Cbor::Integer(i)) => rec.created_at = timestamp(i),
                ("ua", Cbor::Integer(i)) => rec.updated_at = timestamp(i),
                ("cb", Cbor::Integer(i)) => rec.created_by = int_u64(i),
                ("ub", Cbor::Integer(i)) => rec.updated_by = int_u64(i),
                ("f", Cbor::Map(fields)) => {
                    for (fk, fv) in fields {
                        let Cbor::Text(fk) = fk else { continue };
                        match def.field(&fk) {
                            Some(f) => match cbor_to_value(f.kind, &fv) {
                                Some(v) => {
                                    rec.values.insert(f.name, v);
                                }
                                // The field changed kind in a newer version: keep it as is.
                                None => rec.unknown.push((fk, fv)),
                            },
                            None => rec.unknown.push((fk, fv)),
                        }
                    }
                }
                _ => {}
            }
        }
        if rec.id == 0 {
            return Err(corrupt("no id"));
        }
        Ok(rec)
    }
}

fn int_u64(i: ciborium::value::Integer) -> u64 {
    u64::try_from(i).unwrap_or(0)
}

/// Stored times are Unix milliseconds.
fn timestamp(i: ciborium::value::Integer) -> OffsetDateTime {
    i64::try_from(i)
        .ok()
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// `t` cut to what is stored (milliseconds), so a returned record equals a re-read one.
pub(crate) fn to_stored_precision(t: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms(t)) * 1_000_000).unwrap_or(t)
}

fn value_to_cbor(v: &Value) -> Cbor {
    match v {
        Value::Empty => Cbor::Null,
        Value::Text(s) => Cbor::Text(s.clone()),
        Value::Int(i) | Value::Money(i) => Cbor::Integer((*i).into()),
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Date(d) => Cbor::Text(format_date(*d)),
        Value::Ref(id) => Cbor::Integer((*id).into()),
    }
}

fn cbor_to_value(kind: FieldKind, v: &Cbor) -> Option<Value> {
    match (kind, v) {
        (_, Cbor::Null) => Some(Value::Empty),
        (FieldKind::Int { .. }, Cbor::Integer(i)) => i64::try_from(*i).ok().map(Value::Int),
        (FieldKind::Money, Cbor::Integer(i)) => i64::try_from(*i).ok().map(Value::Money),
        (FieldKind::Ref(_), Cbor::Integer(i)) => u64::try_from(*i).ok().map(Value::Ref),
        (FieldKind::Bool, Cbor::Bool(b)) => Some(Value::Bool(*b)),
        (FieldKind::Date, Cbor::Text(s)) => parse_date(s).ok().map(Value::Date),
        (
            FieldKind::Text { .. }
            | FieldKind::LongText
            | FieldKind::Email
            | FieldKind::Phone
            | FieldKind::Choice(_)
            | FieldKind::Grants,
            Cbor::Text(s),
        ) => Some(Value::Text(s.clone())),
        _ => None,
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Unix milliseconds as RFC 3339 (empty when out of range).
pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(rfc3339)
        .unwrap_or_default()
}

/// Storage keys. Every key starts with the entity code and the company, so one
/// company's records are one contiguous range and another company's ids are simply
/// not found in it.
pub(crate) mod keys {
    use crate::entity::EntityDef;

    pub fn scope(def: &EntityDef, company: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(32);
        k.extend(def.code.to_be_bytes());
        k.extend(company.to_be_bytes());
        k
    }

    pub fn record(def: &EntityDef, company: u64, id: u64) -> Vec<u8> {
        let mut k = scope(def, company);
        k.extend(id.to_be_bytes());
        k
    }

    /// Sort index entry: scope | field index | value key | id.
    pub fn index(
        def: &EntityDef,
        company: u64,
        field: u8,
        value: &crate::Value,
        id: u64,
    ) -> Vec<u8> {
        let mut k = index_prefix(def, company, field);
        value.index_key(&mut k);
        k.extend(id.to_be_bytes());
        k
    }

    pub fn index_prefix(def: &EntityDef, company: u64, field: u8) -> Vec<u8> {
        let mut k = scope(def, company);
        k.push(field);
        k
    }

    /// Unique entry: scope (company 0 for global uniqueness) | 0x80 + field | value key.
    pub fn unique(def: &EntityDef, company: u64, field: u8, value: &crate::Value) -> Vec<u8> {
        let mut k = scope(def, company);
        k.push(0x80 | field);
        value.index_key(&mut k);
        k
    }

    pub fn history(def: &EntityDef, company: u64, id: u64, audit_seq: u64) -> Vec<u8> {
        let mut k = record(def, company, id);
        k.extend(audit_seq.to_be_bytes());
        k
    }

    pub fn id_suffix(key: &[u8]) -> Option<u64> {
        let tail = key.get(key.len().checked_sub(8)?..)?;
        Some(u64::from_be_bytes(tail.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entities::CUSTOMER;

    fn sample() -> Record {
        let mut values = BTreeMap::new();
        values.insert("name", Value::Text("Acme".into()));
        values.insert("credit_limit", Value::Money(1_000_050));
        values.insert(
            "customer_since",
            Value::Date(parse_date("2024-02-29").expect("date")),
        );
        Record {
            id: 7,
            company: 1,
            version: 3,
            created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("ts"),
            updated_at: OffsetDateTime::from_unix_timestamp(1_700_000_100).expect("ts"),
            created_by: 2,
            updated_by: 2,
            values,
            unknown: Vec::new(),
        }
    }

    #[test]
    fn records_round_trip() {
        let r = sample();
        let back = Record::decode(&CUSTOMER, &r.encode().expect("encode")).expect("decode");
        assert_eq!(back, r);
    }

    #[test]
    fn fields_from_a_newer_version_survive_a_rewrite_by_an_older_one() {
        // A record as a newer binary would write it: an extra field "segment".
        let newer = Cbor::Map(vec![
            (Cbor::Text("id".into()), Cbor::Integer(9.into())),
            (Cbor::Text("co".into()), Cbor::Integer(1.into())),
            (Cbor::Text("v".into()), Cbor::Integer(1.into())),
            (
                Cbor::Text("f".into()),
                Cbor::Map(vec![
                    (Cbor::Text("name".into()), Cbor::Text("Globex".into())),
                    (
                        Cbor::Text("segment".into()),
                        Cbor::Text("enterprise".into()),
                    ),
                ]),
            ),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&newer, &mut bytes).expect("write");
        let mut rec = Record::decode(&CUSTOMER, &bytes).expect("decode");
        assert_eq!(rec.get("name"), &Value::Text("Globex".into()));
        assert_eq!(
            rec.get("city"),
            &Value::Empty,
            "a field the record lacks reads as empty"
        );
        rec.values.insert("city", Value::Text("Bern".into()));
        let again = Record::decode(&CUSTOMER, &rec.encode().expect("encode")).expect("decode");
        assert_eq!(
            again.unknown,
            vec![("segment".to_string(), Cbor::Text("enterprise".into()))]
        );
        assert_eq!(again.get("city"), &Value::Text("Bern".into()));
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_crash() {
        assert!(Record::decode(&CUSTOMER, b"\xff\x00garbage").is_err());
        assert!(Record::decode(&CUSTOMER, &[]).is_err());
    }
}
