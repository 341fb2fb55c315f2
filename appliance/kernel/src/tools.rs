//! Read-only tools: questions a module answers from the firm's records for the
//! assistant (and for any API client) — "the trial balance of March", "the open
//! invoices of this customer". A module declares them in [`Module::tools`]; the kernel
//! lists them, checks the caller's grants and the arguments, and runs them as the
//! caller, so a tool never shows what the caller may not read.
//!
//! Invariants:
//! * A tool reads; it cannot write. Its body is a synchronous `fn` over `&Kernel`, and
//!   every write path of the kernel is `async` (it waits for the single writer), so a
//!   tool has no way to change state short of blocking on a runtime deliberately; the
//!   test over every installed tool checks that the event log does not move.
//! * The caller may read every entity the tool names in [`Tool::reads`], or the tool
//!   is neither listed for them nor run.
//! * Arguments are checked against the tool's schema before it runs: an unknown or
//!   missing argument, or one of the wrong type, is refused with its name.

use serde_json::{Map, Value as J};

use crate::entity::EntityDef;
use crate::error::KernelError;
use crate::perm::{Action, Principal};
use crate::registry::{self, Module};
use crate::{Kernel, parse_date};

/// What a tool does with its (checked) arguments, as the principal.
pub type ToolFn = fn(&Kernel, &Principal, &Map<String, J>) -> Result<J, KernelError>;

/// A read-only question a module answers.
#[derive(Debug)]
pub struct Tool {
    /// Unique, stable, `module.name` (`ledger.trial_balance`): what a model calls.
    pub name: &'static str,
    /// What it answers, for a model choosing among tools and for people.
    pub description: &'static str,
    /// Its arguments: each a name, a type and a description; see [`Param`].
    pub params: &'static [Param],
    /// The entities it reads: the caller needs read permission on every one.
    pub reads: &'static [&'static EntityDef],
    pub run: ToolFn,
}

/// One argument of a tool.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
    pub description: &'static str,
}

/// The JSON an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A string of at most 200 characters.
    Text,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A whole number of at least 1 (a record id, a count).
    Count,
    /// One of the given strings.
    OneOf(&'static [&'static str]),
}

impl Tool {
    /// Its arguments as a JSON Schema object (what the OpenAI tools format and the
    /// OpenAPI document show).
    pub fn schema(&self) -> J {
        let mut properties = Map::new();
        for p in self.params {
            let mut prop = match p.kind {
                ParamKind::Text => serde_json::json!({ "type": "string", "maxLength": 200 }),
                ParamKind::Date => serde_json::json!({ "type": "string", "format": "date" }),
                ParamKind::Count => serde_json::json!({ "type": "integer", "minimum": 1 }),
                ParamKind::OneOf(options) => {
                    serde_json::json!({ "type": "string", "enum": options })
                }
            };
            prop["description"] = J::from(p.description);
            properties.insert(p.name.to_owned(), prop);
        }
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        serde_json::json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }

    /// Whether `who` may call it: read permission on every entity it reads.
    pub fn allowed(&self, who: &Principal) -> bool {
        self.reads.iter().all(|e| who.can(e.name, Action::Read))
    }

    /// Refuses arguments that do not fit the schema, naming the argument.
    pub fn check(&self, args: &J) -> Result<Map<String, J>, KernelError> {
        let empty = Map::new();
        let args = match args {
            J::Object(map) => map,
            J::Null => &empty,
            _ => {
                return Err(KernelError::BadRequest(
                    "the arguments must be a JSON object".into(),
                ));
            }
        };
        if let Some(unknown) = args
            .keys()
            .find(|k| !self.params.iter().any(|p| p.name == *k))
        {
            return Err(KernelError::invalid(
                "arguments",
                format!("{} takes no argument \"{unknown}\"", self.name),
            ));
        }
        for p in self.params {
            match args.get(p.name) {
                None | Some(J::Null) if p.required => {
                    return Err(KernelError::invalid(
                        p.name,
                        format!("{} needs \"{}\": {}", self.name, p.name, p.description),
                    ));
                }
                None | Some(J::Null) => {}
                Some(v) => check_param(p, v)?,
            }
        }
        Ok(args.clone())
    }
}

fn check_param(p: &Param, v: &J) -> Result<(), KernelError> {
    let refuse = |why: String| Err(KernelError::invalid(p.name, why));
    match (p.kind, v) {
        (ParamKind::Text, J::String(s)) if s.chars().count() <= 200 => Ok(()),
        (ParamKind::Text, J::String(_)) => refuse("use at most 200 characters".into()),
        (ParamKind::Date, J::String(s)) => match parse_date(s) {
            Ok(_) => Ok(()),
            Err(e) => refuse(e),
        },
        (ParamKind::Count, J::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => Ok(()),
        (ParamKind::Count, _) => refuse("expected a whole number of at least 1".into()),
        (ParamKind::OneOf(options), J::String(s)) if options.contains(&s.as_str()) => Ok(()),
        (ParamKind::OneOf(options), _) => refuse(format!("choose one of: {}", options.join(", "))),
        (ParamKind::Text | ParamKind::Date, _) => refuse("expected a string".into()),
    }
}

/// A checked argument as text (`None` when it was not given).
pub fn text_arg<'a>(args: &'a Map<String, J>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(J::as_str)
}

/// A checked date argument (`None` when it was not given).
pub fn date_arg(args: &Map<String, J>, name: &str) -> Result<Option<time::Date>, KernelError> {
    text_arg(args, name)
        .map(|s| parse_date(s).map_err(|e| KernelError::invalid(name, e)))
        .transpose()
}

/// A checked whole-number argument (`None` when it was not given).
pub fn count_arg(args: &Map<String, J>, name: &str) -> Option<u64> {
    args.get(name).and_then(J::as_u64)
}

/// Every installed module's tools, in installation order.
pub fn all() -> impl Iterator<Item = &'static Tool> {
    registry::modules().iter().flat_map(|m| m.tools.iter())
}

/// The installed tool called `name`.
pub fn find(name: &str) -> Option<&'static Tool> {
    all().find(|t| t.name == name)
}

/// Checks a module's tools as it is installed: names are `module.something`, unique,
/// and their parameters unique.
pub(crate) fn check_module(module: &Module, seen: &mut Vec<&'static str>) -> Result<(), String> {
    for t in module.tools {
        let prefix = format!("{}.", module.name);
        if !t.name.starts_with(&prefix) || t.name.len() == prefix.len() {
            return Err(format!(
                "the tool \"{}\" of {} must be named {}<something>",
                t.name, module.name, prefix
            ));
        }
        if seen.contains(&t.name) {
            return Err(format!("two tools are called \"{}\"", t.name));
        }
        seen.push(t.name);
        for (i, p) in t.params.iter().enumerate() {
            if t.params[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("{} has two arguments \"{}\"", t.name, p.name));
            }
        }
    }
    Ok(())
}

impl Kernel {
    /// The tools `who` may call.
    pub fn tools_for(&self, who: &Principal) -> Vec<&'static Tool> {
        all().filter(|t| t.allowed(who)).collect()
    }

    /// Runs tool `name` with `args` as `who`: refused when there is no such tool
    /// (404), when `who` may not read what it reads (403), or when the arguments do
    /// not fit (422).
    pub fn call_tool(&self, who: &Principal, name: &str, args: &J) -> Result<J, KernelError> {
        let tool = find(name)
            .ok_or_else(|| KernelError::NotFound(format!("there is no tool \"{name}\"")))?;
        if let Some(e) = tool.reads.iter().find(|e| !who.can(e.name, Action::Read)) {
            return Err(KernelError::Forbidden {
                action: "use",
                entity: format!(
                    "{}: it reads {}, which your role may not read",
                    tool.name,
                    e.plural.to_lowercase()
                ),
            });
        }
        let args = tool.check(args)?;
        (tool.run)(self, who, &args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entities::CUSTOMER;

    fn tool() -> Tool {
        Tool {
            name: "parties.report",
            description: "a report",
            params: &[
                Param {
                    name: "from",
                    kind: ParamKind::Date,
                    required: true,
                    description: "the first day",
                },
                Param {
                    name: "limit",
                    kind: ParamKind::Count,
                    required: false,
                    description: "how many",
                },
                Param {
                    name: "side",
                    kind: ParamKind::OneOf(&["left", "right"]),
                    required: false,
                    description: "which side",
                },
            ],
            reads: &[],
            run: |_, _, _| Ok(J::Null),
        }
    }

    fn refused(args: J) -> String {
        match tool().check(&args) {
            Err(KernelError::Invalid(fields)) => fields
                .0
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => e.to_string(),
            Ok(_) => panic!("{args} was accepted"),
        }
    }

    #[test]
    fn arguments_are_checked_against_the_schema_and_named_when_wrong() {
        let t = tool();
        let ok = t
            .check(&serde_json::json!({ "from": "2026-02-28", "limit": 3, "side": "left" }))
            .expect("fits");
        assert_eq!(count_arg(&ok, "limit"), Some(3));
        assert!(refused(serde_json::json!({})).contains("needs \"from\""));
        assert!(refused(serde_json::json!({ "from": "2026-02-30" })).contains("from"));
        assert!(refused(serde_json::json!({ "from": "2026-02-28", "limit": 0 })).contains("limit"));
        assert!(
            refused(serde_json::json!({ "from": "2026-02-28", "limit": "3" })).contains("limit")
        );
        assert!(
            refused(serde_json::json!({ "from": "2026-02-28", "side": "up" }))
                .contains("left, right")
        );
        assert!(
            refused(serde_json::json!({ "from": "2026-02-28", "to": "x" }))
                .contains("no argument \"to\"")
        );
        assert!(refused(serde_json::json!(["2026-02-28"])).contains("JSON object"));
        let long = "x".repeat(201);
        let text = Tool {
            params: &[Param {
                name: "q",
                kind: ParamKind::Text,
                required: true,
                description: "text",
            }],
            ..tool()
        };
        assert!(text.check(&serde_json::json!({ "q": long })).is_err());
    }

    #[test]
    fn the_schema_says_what_the_check_enforces() {
        let schema = tool().schema();
        assert_eq!(schema["required"], serde_json::json!(["from"]));
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["from"]["format"], "date");
        assert_eq!(schema["properties"]["limit"]["minimum"], 1);
        assert_eq!(
            schema["properties"]["side"]["enum"],
            serde_json::json!(["left", "right"])
        );
    }

    #[test]
    fn a_module_s_tools_are_named_after_it_and_unique() {
        static TOOLS: &[Tool] = &[Tool {
            name: "other.report",
            description: "",
            params: &[],
            reads: &[&CUSTOMER],
            run: |_, _, _| Ok(J::Null),
        }];
        static MODULE: Module = Module {
            name: "parties",
            label: "Parties",
            code: 90,
            entities: &[],
            roles: &[],
            demo: None,
            tools: TOOLS,
            jobs: &[],
            schedules: &[],
        };
        let e = check_module(&MODULE, &mut Vec::new()).expect_err("misnamed");
        assert!(e.contains("must be named parties."), "{e}");
    }
}
