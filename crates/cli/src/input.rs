//! Reading `FILE|-`, splitting arrays into cases, and typed field accessors whose errors name the
//! case and the field.

use std::io::Read;

use serde_json::{Map, Value};

use crate::error::{CaseRef, CliError};

/// Read the whole input from a path or stdin (`-`).
pub fn read_input(path: &str) -> Result<String, CliError> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| CliError::Read {
                path: "stdin".into(),
                source,
            })?;
    } else {
        text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
            path: path.into(),
            source,
        })?;
    }
    Ok(text)
}

/// Parsed input: one object or an array of objects (answers keep the same shape).
pub struct Cases {
    pub items: Vec<Map<String, Value>>,
    pub was_array: bool,
}

/// Quote the non-JSON tokens `NaN`, `Infinity` and `-Infinity` (as Python's `json` writes them)
/// so the field accessors can reject them by case and field name instead of failing the parse.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if let Some(tok) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push('"');
            out.push_str(tok);
            out.push('"');
            rest = &rest[tok.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Split the JSON text into cases.
pub fn parse_cases(text: &str) -> Result<Cases, CliError> {
    let v: Value = serde_json::from_str(&quote_non_finite(text))?;
    match v {
        Value::Object(m) => Ok(Cases {
            items: vec![m],
            was_array: false,
        }),
        Value::Array(items) => {
            let items = items
                .into_iter()
                .map(|i| match i {
                    Value::Object(m) => Ok(m),
                    _ => Err(CliError::NotObject),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Cases {
                items,
                was_array: true,
            })
        }
        _ => Err(CliError::NotObject),
    }
}

/// Field access on one case (or a nested object of it) with error messages naming both.
pub struct Fields<'a> {
    pub case: &'a CaseRef,
    pub obj: &'a Map<String, Value>,
    /// Prefix for nested objects, e.g. `legs[2].`.
    pub prefix: String,
}

impl<'a> Fields<'a> {
    pub fn new(case: &'a CaseRef, obj: &'a Map<String, Value>) -> Self {
        Self {
            case,
            obj,
            prefix: String::new(),
        }
    }

    pub fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn bad(&self, key: &str, message: impl Into<String>) -> CliError {
        CliError::BadField {
            case: self.case.clone(),
            field: self.path(key),
            message: message.into(),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.obj.get(key).is_some_and(|v| !v.is_null())
    }

    /// A required number.
    pub fn f64(&self, key: &str) -> Result<f64, CliError> {
        self.opt_f64(key)?.ok_or_else(|| CliError::Missing {
            case: self.case.clone(),
            field: self.path(key),
        })
    }

    /// An optional number (absent or null -> None). Strings "NaN"/"inf" are rejected by name.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, CliError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(key, "not a number")),
            Some(Value::String(s)) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
                Err(self.bad(key, format!("not a finite number ({s})")))
            }
            Some(Value::String(s)) => {
                Err(self.bad(key, format!("expected a number, got the string \"{s}\"")))
            }
            Some(other) => Err(self.bad(key, format!("expected a number, got {other}"))),
        }
    }

    /// A required signed integer.
    pub fn i64(&self, key: &str) -> Result<i64, CliError> {
        self.opt_i64(key)?.ok_or_else(|| CliError::Missing {
            case: self.case.clone(),
            field: self.path(key),
        })
    }

    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, CliError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(Some(f as i64)),
                    _ => Err(self.bad(key, format!("expected a whole number, got {n}"))),
                },
            },
            Some(other) => Err(self.bad(key, format!("expected a whole number, got {other}"))),
        }
    }

    pub fn str(&self, key: &str) -> Result<&'a str, CliError> {
        self.opt_str(key)?.ok_or_else(|| CliError::Missing {
            case: self.case.clone(),
            field: self.path(key),
        })
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, CliError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.bad(key, format!("expected a string, got {other}"))),
        }
    }

    /// An optional nested object.
    pub fn opt_object(&self, key: &str) -> Result<Option<Fields<'a>>, CliError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Fields {
                case: self.case,
                obj: m,
                prefix: format!("{}{key}.", self.prefix),
            })),
            Some(other) => Err(self.bad(key, format!("expected an object, got {other}"))),
        }
    }

    pub fn object(&self, key: &str) -> Result<Fields<'a>, CliError> {
        self.opt_object(key)?.ok_or_else(|| CliError::Missing {
            case: self.case.clone(),
            field: self.path(key),
        })
    }

    /// An array of objects (required unless `optional`), each as `Fields` named `key[i].`.
    pub fn objects(&self, key: &str, optional: bool) -> Result<Vec<Fields<'a>>, CliError> {
        match self.obj.get(key) {
            None | Some(Value::Null) if optional => Ok(Vec::new()),
            None | Some(Value::Null) => Err(CliError::Missing {
                case: self.case.clone(),
                field: self.path(key),
            }),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(m) => Ok(Fields {
                        case: self.case,
                        obj: m,
                        prefix: format!("{}{key}[{i}].", self.prefix),
                    }),
                    other => Err(self.bad(
                        &format!("{key}[{i}]"),
                        format!("expected an object, got {other}"),
                    )),
                })
                .collect(),
            Some(other) => Err(self.bad(key, format!("expected an array, got {other}"))),
        }
    }

    /// An optional array of numbers.
    pub fn opt_numbers(&self, key: &str) -> Result<Option<Vec<f64>>, CliError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_f64().ok_or_else(|| {
                        self.bad(
                            &format!("{key}[{i}]"),
                            format!("expected a number, got {v}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.bad(key, format!("expected an array of numbers, got {other}"))),
        }
    }

    /// `t` in years, or `days` / 365. Missing both is an error naming `t`.
    pub fn years(&self) -> Result<f64, CliError> {
        if let Some(d) = self.opt_f64("days")? {
            return Ok(d / 365.0);
        }
        self.opt_f64("t")?.ok_or_else(|| CliError::Missing {
            case: self.case.clone(),
            field: self.path("t` or `days"),
        })
    }

    /// A pricing error raised while using this object's fields.
    pub fn pricing_err(&self, e: tradeguard_pricing::PricingError) -> CliError {
        let field = e.field().map_or_else(
            || self.prefix.trim_end_matches('.').to_string(),
            |f| self.path(f),
        );
        CliError::Pricing {
            case: self.case.clone(),
            field,
            source: e,
        }
    }

    /// Parse an option type field.
    pub fn option_type(&self, key: &str) -> Result<tradeguard_pricing::OptionType, CliError> {
        let s = self.str(key)?;
        s.parse().map_err(|e| CliError::Pricing {
            case: self.case.clone(),
            field: self.path(key),
            source: e,
        })
    }
}

/// Case reference from an object's `id` (string or number) and its index.
pub fn case_ref(index: usize, obj: &Map<String, Value>) -> CaseRef {
    let id = match obj.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    CaseRef { index, id }
}
