//! Validation of Kubernetes objects against the `openAPIV3Schema` of the CRDs
//! vendored in `crds/` (see `crds/SOURCES.md`): the CloudNativePG Cluster,
//! Backup, ScheduledBackup and Database, the barman-cloud plugin's ObjectStore
//! and Flux's Kustomization.
//!
//! The checks are the ones the API server makes when such an object is
//! applied, so a rendered manifest can be judged before it reaches a cluster:
//!
//! - the structural-schema keywords CRDs use: `type`, `properties`,
//!   `required`, `additionalProperties`, `items`, `enum`, `pattern`, `format`
//!   (`int32`, `int64`, `date-time`, `date`, `byte`; other formats are not
//!   checked), `minimum`/`maximum` and their `exclusive*` flags,
//!   `minLength`/`maxLength`, `minItems`/`maxItems`,
//!   `minProperties`/`maxProperties`, `nullable`, `allOf`/`anyOf`/`oneOf`/`not`,
//!   `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
//!   `x-kubernetes-embedded-resource` and `x-kubernetes-list-type` (`set` and
//!   `map` lists must not hold duplicates);
//! - `default` is not validated, but it is applied before the checks, as the
//!   API server does: a `required` field that has a default is never missing,
//!   and a `null` in a field that is not `nullable` is dropped (or replaced by
//!   the default) instead of being a type error;
//! - `metadata`: `name` is required and must be a DNS-1123 subdomain (a Cluster
//!   name must also be a DNS-1035 label of at most 50 characters, as the
//!   CloudNativePG webhook requires), `namespace` a DNS-1123 label, labels and
//!   annotations maps of strings with valid keys (and, for labels, values);
//! - `x-kubernetes-validations` (CEL rules): see the `cel` module for the
//!   subset of the language that is evaluated. Rules that mention `oldSelf` are
//!   transition rules, checked by the API server only on an update against
//!   the stored object; there is no stored object here, so they are skipped
//!   (the CRDs use them to make fields immutable). As in the API server, the
//!   rules are not evaluated when the schema pass found a type error.
//!
//! One departure from the API server, on purpose: a field the schema does not
//! know is reported as "unknown field" instead of being pruned silently (in a
//! GitOps repository it is almost always a typo), except under
//! `x-kubernetes-preserve-unknown-fields`. The caller decides how severe that
//! is.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

/// One violation: where it is and what is wrong, worded like the API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaError {
    /// Field path in the document, such as
    /// `spec.externalClusters[0].plugin.name` or `metadata.labels[app]`; empty
    /// for the document itself.
    pub path: String,
    /// What is wrong, such as `Required value` or
    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub message: String,
}

impl SchemaError {
    fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// The document's apiVersion and kind are not those of a vendored CRD (a
/// Namespace, a Secret, a `kustomize.config.k8s.io` Kustomization, a CNPG kind
/// whose CRD is not vendored...): the caller can skip it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no vendored CRD for kind {kind} in {api_version}")]
pub struct UnknownKind {
    /// The document's apiVersion.
    pub api_version: String,
    /// The document's kind.
    pub kind: String,
}

/// The vendored CRDs, by file name.
const CRD_FILES: [(&str, &str); 6] = [
    (
        "cnpg-cluster.yaml",
        include_str!("../../crds/cnpg-cluster.yaml"),
    ),
    (
        "cnpg-backup.yaml",
        include_str!("../../crds/cnpg-backup.yaml"),
    ),
    (
        "cnpg-scheduledbackup.yaml",
        include_str!("../../crds/cnpg-scheduledbackup.yaml"),
    ),
    (
        "cnpg-database.yaml",
        include_str!("../../crds/cnpg-database.yaml"),
    ),
    (
        "barmancloud-objectstore.yaml",
        include_str!("../../crds/barmancloud-objectstore.yaml"),
    ),
    (
        "flux-kustomization.yaml",
        include_str!("../../crds/flux-kustomization.yaml"),
    ),
];

/// One vendored CRD: its group, kind and the schema of each version.
#[derive(Debug)]
struct Crd {
    group: String,
    kind: String,
    /// (version name, served, openAPIV3Schema)
    versions: Vec<(String, bool, Value)>,
}

fn load_crd(text: &str) -> Result<Crd, String> {
    let docs = crate::yaml::parse_values(text).map_err(|e| e.to_string())?;
    let doc = docs
        .into_iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
        .ok_or("no CustomResourceDefinition document")?;
    let spec = doc.get("spec").ok_or("no spec")?;
    let text_at = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(format!("no {pointer}"))
    };
    let group = text_at(spec, "/group")?;
    let kind = text_at(spec, "/names/kind")?;
    let mut versions = Vec::new();
    for version in spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("no spec.versions")?
    {
        let name = text_at(version, "/name")?;
        let served = version.get("served").and_then(Value::as_bool) == Some(true);
        let schema = version
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .ok_or(format!("version {name} has no schema.openAPIV3Schema"))?;
        versions.push((name, served, schema));
    }
    Ok(Crd {
        group,
        kind,
        versions,
    })
}

/// The vendored CRDs, parsed on first use. They are tested to load, so a
/// failure here is a broken build and panics.
fn crds() -> &'static [Crd] {
    static CRDS: OnceLock<Vec<Crd>> = OnceLock::new();
    CRDS.get_or_init(|| {
        CRD_FILES
            .iter()
            .map(|(file, text)| {
                load_crd(text).unwrap_or_else(|e| panic!("vendored CRD crds/{file}: {e}"))
            })
            .collect()
    })
}

/// Splits an apiVersion into group and version (`v1` is the core group).
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The `openAPIV3Schema` for an apiVersion and kind, if one of the vendored
/// CRDs serves it.
///
/// # Panics
///
/// Only if a vendored CRD cannot be parsed, which the tests rule out.
#[must_use]
pub fn schema_for(api_version: &str, kind: &str) -> Option<&'static Value> {
    let (group, version) = split_api_version(api_version);
    crds()
        .iter()
        .filter(|crd| crd.group == group && crd.kind == kind)
        .flat_map(|crd| &crd.versions)
        .find(|(name, served, _)| *served && name == version)
        .map(|(_, _, schema)| schema)
}

/// Validates a Kubernetes object against the vendored CRD for its apiVersion
/// and kind, plus the metadata rules (name required and well formed).
///
/// Returns [`UnknownKind`] when no vendored CRD has that group and kind, so
/// the caller can skip the object. A document that is not an object, or has
/// no apiVersion or kind, is reported as errors; so is a kind of ours in a
/// version the CRD does not serve.
///
/// # Panics
///
/// Only if a vendored CRD cannot be parsed, which the tests rule out.
pub fn validate(doc: &Value) -> Result<Vec<SchemaError>, UnknownKind> {
    let Some(object) = doc.as_object() else {
        return Ok(vec![SchemaError::new(
            "",
            format!(
                "Invalid value: \"{}\": must be of type object",
                json_type(doc)
            ),
        )]);
    };
    let mut errors = Vec::new();
    let mut header = |key: &str| match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        Some(Value::String(_) | Value::Null) | None => {
            errors.push(SchemaError::new(key, "Required value"));
            None
        }
        Some(other) => {
            errors.push(SchemaError::new(
                key,
                format!(
                    "Invalid value: \"{}\": must be of type string",
                    json_type(other)
                ),
            ));
            None
        }
    };
    let (api_version, kind) = (header("apiVersion"), header("kind"));
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Ok(errors);
    };
    let (group, version) = split_api_version(api_version);
    let Some(crd) = crds()
        .iter()
        .find(|crd| crd.group == group && crd.kind == kind)
    else {
        return Err(UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        });
    };
    let Some((_, _, schema)) = crd
        .versions
        .iter()
        .find(|(name, served, _)| *served && name == version)
    else {
        let supported: Vec<String> = crd
            .versions
            .iter()
            .filter(|(_, served, _)| *served)
            .map(|(name, _, _)| format!("\"{}/{name}\"", crd.group))
            .collect();
        errors.push(SchemaError::new(
            "apiVersion",
            format!(
                "Unsupported value: \"{api_version}\": supported values: {}",
                supported.join(", ")
            ),
        ));
        return Ok(errors);
    };
    check_resource_name(doc, crd, &mut errors);
    errors.extend(validate_against(schema, doc));
    Ok(errors)
}

/// `metadata.name` is required and a DNS-1123 subdomain; a CloudNativePG
/// Cluster's name must also be a DNS-1035 label of at most 50 characters (its
/// webhook's rule: the name is used for Services).
fn check_resource_name(doc: &Value, crd: &Crd, errors: &mut Vec<SchemaError>) {
    let meta = doc.get("metadata");
    if meta.is_some_and(|m| !m.is_object() && !m.is_null()) {
        return; // reported as a type error by the schema walk
    }
    match meta.and_then(|m| m.get("name")) {
        None | Some(Value::Null) => {
            errors.push(SchemaError::new("metadata.name", "Required value"));
        }
        Some(Value::String(name)) => {
            if name.is_empty() {
                errors.push(SchemaError::new("metadata.name", "Required value"));
            } else if crd.group == "postgresql.cnpg.io"
                && crd.kind == "Cluster"
                // Not a subdomain either: the ObjectMeta check says so.
                && is_dns1123_subdomain(name)
            {
                if !is_dns1035_label(name) {
                    errors.push(SchemaError::new(
                        "metadata.name",
                        format!(
                            "Invalid value: {}: cluster name must be a valid DNS label",
                            shown(&Value::from(name.as_str()))
                        ),
                    ));
                }
                if name.chars().count() > 50 {
                    errors.push(SchemaError::new(
                        "metadata.name",
                        format!(
                            "Invalid value: {}: the maximum length of a cluster name is 50 characters",
                            shown(&Value::from(name.as_str()))
                        ),
                    ));
                }
            }
        }
        Some(_) => {} // a type error, reported by the ObjectMeta check
    }
}

/// Validates `doc` against one schema node (usually a CRD version's
/// `openAPIV3Schema`), then evaluates the schema's CEL rules if no type error
/// was found. At the top level, `metadata` is checked as Kubernetes
/// ObjectMeta (its name is not required here: [`validate`] requires it).
#[must_use]
pub fn validate_against(schema: &Value, doc: &Value) -> Vec<SchemaError> {
    let mut doc = doc.clone();
    apply_defaults(schema, &mut doc);
    let mut walker = Walker {
        errors: Vec::new(),
        type_error: false,
        report_unknown: true,
    };
    walker.node(schema, &doc, "", true);
    let mut errors = walker.errors;
    if !walker.type_error {
        cel_walk(schema, &doc, "", &mut errors);
    }
    errors
}

// ---------------------------------------------------------------------------
// Defaulting

fn is_nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

/// The schema of an object's field: its `properties` entry, else a schema in
/// `additionalProperties`.
fn field_schema<'s>(schema: &'s Value, key: &str) -> Option<&'s Value> {
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

/// What the API server does before validating: drop `null` from fields that
/// are not `nullable`, then fill absent fields that have a `default`,
/// recursively (defaults included).
fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, v| {
                !(v.is_null()
                    && field_schema(schema, key)
                        .is_some_and(|s| !is_nullable(s) && s.get("default").is_none()))
            });
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, child) in props {
                    let missing = match map.get(key) {
                        None => true,
                        Some(v) => v.is_null() && !is_nullable(child),
                    };
                    if let (true, Some(default)) = (missing, child.get("default")) {
                        map.insert(key.clone(), default.clone());
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object())
                && let Some(default) = additional.get("default")
            {
                for (key, v) in map.iter_mut() {
                    let declared = schema.get("properties").and_then(|p| p.get(key)).is_some();
                    if !declared && v.is_null() && !is_nullable(additional) {
                        *v = default.clone();
                    }
                }
            }
            for (key, v) in map.iter_mut() {
                if let Some(child) = field_schema(schema, key) {
                    apply_defaults(child, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// The schema walk

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as the API server quotes it in a message: scalars as JSON (long
/// strings shortened), collections by their type.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 80 => {
            let head: String = s.chars().take(77).collect();
            Value::from(format!("{head}...")).to_string()
        }
        Value::Null | Value::Array(_) | Value::Object(_) => format!("\"{}\"", json_type(v)),
        _ => v.to_string(),
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

fn has_type(v: &Value, ty: &str) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

/// Equality as JSON values, with numbers compared by value (`1 == 1.0`).
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => number_cmp(a, b) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| values_equal(a, b)))
        }
        _ => a == b,
    }
}

fn number_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn count_limit(schema: &Value, key: &str) -> Option<usize> {
    schema
        .get(key)
        .and_then(Value::as_u64)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

struct Walker {
    errors: Vec<SchemaError>,
    /// A value had the wrong type: CEL rules are then not evaluated.
    type_error: bool,
    /// Off inside `allOf`/`anyOf`/`oneOf`/`not`, whose branches only constrain
    /// fields declared by the main schema.
    report_unknown: bool,
}

impl Walker {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(SchemaError::new(path, message));
    }

    /// Validates one value. `resource_root` is true for the document itself
    /// and for embedded resources, whose `metadata` is ObjectMeta.
    fn node(&mut self, schema: &Value, value: &Value, path: &str, resource_root: bool) {
        if !schema.is_object() {
            return;
        }
        if value.is_null() {
            if is_nullable(schema) {
                return;
            }
            if let Some(ty) = schema.get("type").and_then(Value::as_str) {
                self.push(
                    path,
                    format!("Invalid value: \"null\": must be of type {ty}"),
                );
                self.type_error = true;
                return;
            }
            if flag(schema, "x-kubernetes-int-or-string") {
                self.push(
                    path,
                    "Invalid value: \"null\": must be of type integer or string",
                );
                self.type_error = true;
                return;
            }
        }
        if flag(schema, "x-kubernetes-int-or-string") && !is_integer(value) && !value.is_string() {
            self.push(
                path,
                format!(
                    "Invalid value: \"{}\": must be of type integer or string",
                    json_type(value)
                ),
            );
            self.type_error = true;
            return;
        }
        if let Some(ty) = schema.get("type").and_then(Value::as_str)
            && !has_type(value, ty)
        {
            self.push(
                path,
                format!(
                    "Invalid value: \"{}\": must be of type {ty}",
                    json_type(value)
                ),
            );
            self.type_error = true;
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.iter().any(|a| values_equal(a, value))
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            self.push(
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    shown(value),
                    list.join(", ")
                ),
            );
        }
        match value {
            Value::String(s) => self.string(schema, s, value, path),
            Value::Number(_) => self.number(schema, value, path),
            Value::Array(items) => self.array(schema, items, path),
            Value::Object(map) => self.object(schema, map, path, resource_root),
            _ => {}
        }
        self.junctors(schema, value, path);
    }

    fn string(&mut self, schema: &Value, s: &str, value: &Value, path: &str) {
        let len = s.chars().count();
        if let Some(max) = count_limit(schema, "maxLength")
            && len > max
        {
            self.push(
                path,
                format!("Too long: must be no more than {max} characters"),
            );
        }
        if let Some(min) = count_limit(schema, "minLength")
            && len < min
        {
            self.push(
                path,
                format!(
                    "Invalid value: {}: must be at least {min} characters",
                    shown(value)
                ),
            );
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && let Some(re) = cached_regex(pattern)
            && !re.is_match(s)
        {
            self.push(
                path,
                format!("Invalid value: {}: should match '{pattern}'", shown(value)),
            );
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str) {
            let ok = match format {
                "date-time" => is_date_time(s),
                "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
                "byte" => is_base64(s),
                _ => true,
            };
            if !ok {
                self.push(
                    path,
                    format!("Invalid value: {}: must be of type {format}", shown(value)),
                );
            }
        }
    }

    fn number(&mut self, schema: &Value, value: &Value, path: &str) {
        if let Some(min) = schema.get("minimum").filter(|m| m.is_number()) {
            let exclusive = flag(schema, "exclusiveMinimum");
            match (number_cmp(value, min), exclusive) {
                (Some(Ordering::Less), _) | (Some(Ordering::Equal), true) => {
                    let how = if exclusive {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    self.push(
                        path,
                        format!("Invalid value: {value}: should be {how} {min}"),
                    );
                }
                _ => {}
            }
        }
        if let Some(max) = schema.get("maximum").filter(|m| m.is_number()) {
            let exclusive = flag(schema, "exclusiveMaximum");
            match (number_cmp(value, max), exclusive) {
                (Some(Ordering::Greater), _) | (Some(Ordering::Equal), true) => {
                    let how = if exclusive {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    self.push(
                        path,
                        format!("Invalid value: {value}: should be {how} {max}"),
                    );
                }
                _ => {}
            }
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str) {
            let ok = match format {
                "int32" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                "int64" => value.as_i64().is_some(),
                _ => true,
            };
            // A fractional value already failed `type: integer`.
            if !ok && is_integer(value) {
                self.push(
                    path,
                    format!("Invalid value: {value}: must be of type {format}"),
                );
            }
        }
    }

    fn array(&mut self, schema: &Value, items: &[Value], path: &str) {
        if let Some(max) = count_limit(schema, "maxItems")
            && items.len() > max
        {
            self.push(
                path,
                format!("Too many: {}: must have at most {max} items", items.len()),
            );
        }
        if let Some(min) = count_limit(schema, "minItems")
            && items.len() < min
        {
            self.push(
                path,
                format!("Invalid value: \"array\": should have at least {min} items"),
            );
        }
        let item_schema = schema.get("items");
        for (i, item) in items.iter().enumerate() {
            if let Some(item_schema) = item_schema {
                self.node(item_schema, item, &format!("{path}[{i}]"), false);
            }
        }
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].iter().any(|earlier| values_equal(earlier, item)) {
                        self.push(
                            &format!("{path}[{i}]"),
                            format!("Duplicate value: {}", compact(item)),
                        );
                    }
                }
            }
            Some("map") => {
                let keys: Vec<&str> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if keys.is_empty() {
                    return;
                }
                // An item without its keys is reported by `required`.
                let key_of = |item: &Value| -> Option<Map<String, Value>> {
                    let object = item.as_object()?;
                    keys.iter()
                        .map(|k| Some(((*k).to_owned(), object.get(*k)?.clone())))
                        .collect()
                };
                let tuples: Vec<Option<Map<String, Value>>> = items.iter().map(key_of).collect();
                for (i, tuple) in tuples.iter().enumerate() {
                    let Some(tuple) = tuple else { continue };
                    if tuples[..i].iter().flatten().any(|earlier| {
                        values_equal(
                            &Value::Object(earlier.clone()),
                            &Value::Object(tuple.clone()),
                        )
                    }) {
                        self.push(
                            &format!("{path}[{i}]"),
                            format!("Duplicate value: {}", Value::Object(tuple.clone())),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn object(
        &mut self,
        schema: &Value,
        map: &Map<String, Value>,
        path: &str,
        resource_root: bool,
    ) {
        if let Some(max) = count_limit(schema, "maxProperties")
            && map.len() > max
        {
            self.push(
                path,
                format!(
                    "Too many: {}: must have at most {max} properties",
                    map.len()
                ),
            );
        }
        if let Some(min) = count_limit(schema, "minProperties")
            && map.len() < min
        {
            self.push(
                path,
                format!("Invalid value: \"object\": should have at least {min} properties"),
            );
        }
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
        let embedded = flag(schema, "x-kubernetes-embedded-resource");
        for (key, v) in map {
            let field = child_path(path, key);
            if (resource_root || embedded) && key == "metadata" {
                self.object_meta(v, &field);
                // A CRD may constrain metadata.name; walk what it declares.
                if let Some(meta_schema) = props.and_then(|p| p.get(key))
                    && meta_schema.get("properties").is_some()
                {
                    let report = std::mem::replace(&mut self.report_unknown, false);
                    self.node(meta_schema, v, &field, false);
                    self.report_unknown = report;
                }
                continue;
            }
            if let Some(child) = props.and_then(|p| p.get(key)) {
                self.node(child, v, &field, false);
            } else if let Some(child) = additional.filter(|a| a.is_object()) {
                self.node(child, v, &format!("{path}[{key}]"), false);
            } else if additional == Some(&Value::Bool(true))
                || preserve
                || (embedded && (key == "apiVersion" || key == "kind"))
            {
                // kept as is
            } else if self.report_unknown {
                self.push(&field, "unknown field");
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for key in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(key) {
                    self.push(&child_path(path, key), "Required value");
                }
            }
        }
        if embedded {
            for key in ["apiVersion", "kind"] {
                match map.get(key) {
                    None => self.push(&child_path(path, key), "Required value"),
                    Some(Value::String(_)) => {}
                    Some(other) => {
                        self.push(
                            &child_path(path, key),
                            format!(
                                "Invalid value: \"{}\": must be of type string",
                                json_type(other)
                            ),
                        );
                        self.type_error = true;
                    }
                }
            }
        }
    }

    /// `allOf`, `anyOf`, `oneOf` and `not`. Their branches only constrain
    /// what the main schema declares: no unknown fields, no ObjectMeta.
    fn junctors(&mut self, schema: &Value, value: &Value, path: &str) {
        let branch_errors = |branch: &Value| -> Vec<SchemaError> {
            let mut walker = Walker {
                errors: Vec::new(),
                type_error: false,
                report_unknown: false,
            };
            walker.node(branch, value, path, false);
            walker.errors
        };
        let branches = |key: &str| -> &[Value] {
            schema
                .get(key)
                .and_then(Value::as_array)
                .map_or(&[], Vec::as_slice)
        };
        for branch in branches("allOf") {
            self.errors.extend(branch_errors(branch));
        }
        let any_of = branches("anyOf");
        if !any_of.is_empty() {
            let results: Vec<Vec<SchemaError>> = any_of.iter().map(branch_errors).collect();
            if results.iter().all(|errors| !errors.is_empty()) {
                self.push(
                    path,
                    format!(
                        "Invalid value: {}: must validate at least one schema (anyOf)",
                        shown(value)
                    ),
                );
                self.errors.extend(results.into_iter().flatten());
            }
        }
        let one_of = branches("oneOf");
        if !one_of.is_empty() {
            let results: Vec<Vec<SchemaError>> = one_of.iter().map(branch_errors).collect();
            let passing = results.iter().filter(|errors| errors.is_empty()).count();
            if passing != 1 {
                self.push(
                    path,
                    format!(
                        "Invalid value: {}: must validate one and only one schema (oneOf)",
                        shown(value)
                    ),
                );
                if passing == 0 {
                    self.errors.extend(results.into_iter().flatten());
                }
            }
        }
        if let Some(not) = schema.get("not")
            && branch_errors(not).is_empty()
        {
            self.push(
                path,
                format!(
                    "Invalid value: {}: must not validate the schema (not)",
                    shown(value)
                ),
            );
        }
    }

    /// Kubernetes ObjectMeta: the fields a manifest can set, with their types
    /// and formats. The name is not required here.
    fn object_meta(&mut self, value: &Value, path: &str) {
        let Some(map) = value.as_object() else {
            if !value.is_null() {
                self.push(
                    path,
                    format!(
                        "Invalid value: \"{}\": must be of type object",
                        json_type(value)
                    ),
                );
                self.type_error = true;
            }
            return;
        };
        for (key, v) in map {
            let path = child_path(path, key);
            match key.as_str() {
                "name" | "generateName" | "namespace" => {
                    let Some(s) = v.as_str() else {
                        if !v.is_null() {
                            self.push(
                                &path,
                                format!(
                                    "Invalid value: \"{}\": must be of type string",
                                    json_type(v)
                                ),
                            );
                            self.type_error = true;
                        }
                        continue;
                    };
                    if key == "name" && !s.is_empty() {
                        self.dns1123_subdomain(s, &path);
                    } else if key == "namespace" && !s.is_empty() && !is_dns1123_label(s) {
                        self.push(
                            &path,
                            format!(
                                "Invalid value: {}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                                shown(v)
                            ),
                        );
                    }
                }
                "labels" | "annotations" => self.string_map(v, &path, key == "labels"),
                "finalizers" => match v {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if !item.is_string() {
                                self.push(
                                    &format!("{path}[{i}]"),
                                    format!(
                                        "Invalid value: \"{}\": must be of type string",
                                        json_type(item)
                                    ),
                                );
                                self.type_error = true;
                            }
                        }
                    }
                    Value::Null => {}
                    other => {
                        self.push(
                            &path,
                            format!(
                                "Invalid value: \"{}\": must be of type array",
                                json_type(other)
                            ),
                        );
                        self.type_error = true;
                    }
                },
                "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
                | "ownerReferences"
                | "managedFields"
                | "selfLink" => {}
                _ => self.push(&path, "unknown field"),
            }
        }
    }

    fn dns1123_subdomain(&mut self, s: &str, path: &str) {
        if s.len() > 253 {
            self.push(path, "Too long: must be no more than 253 characters");
        }
        if !dns1123_subdomain_re().is_match(s) {
            self.push(
                path,
                format!(
                    "Invalid value: {}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                    shown(&Value::from(s))
                ),
            );
        }
    }

    /// Labels or annotations: string values under qualified-name keys; label
    /// values are also restricted.
    fn string_map(&mut self, value: &Value, path: &str, labels: bool) {
        let Some(map) = value.as_object() else {
            if !value.is_null() {
                self.push(
                    path,
                    format!(
                        "Invalid value: \"{}\": must be of type object",
                        json_type(value)
                    ),
                );
                self.type_error = true;
            }
            return;
        };
        for (key, v) in map {
            let entry = format!("{path}[{key}]");
            if let Some(problem) = qualified_name_problem(key) {
                self.push(
                    path,
                    format!(
                        "Invalid value: {}: {problem}",
                        shown(&Value::from(key.as_str()))
                    ),
                );
            }
            match v {
                Value::String(s) => {
                    if labels && !is_label_value(s) {
                        self.push(
                            &entry,
                            format!(
                                "Invalid value: {}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)",
                                shown(v)
                            ),
                        );
                    }
                }
                other => {
                    self.push(
                        &entry,
                        format!(
                            "Invalid value: \"{}\": must be of type string",
                            json_type(other)
                        ),
                    );
                    self.type_error = true;
                }
            }
        }
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => v.to_string(),
        _ => {
            let text = v.to_string();
            if text.chars().count() > 80 {
                format!("\"{}\"", json_type(v))
            } else {
                text
            }
        }
    }
}

fn is_date_time(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
        || chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

fn is_base64(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        fixed_regex(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
    })
    .is_match(s)
}

fn fixed_regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern}: {e}"))
}

fn dns1123_subdomain_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        fixed_regex(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    })
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && dns1123_subdomain_re().is_match(s)
}

fn is_dns1123_label(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63
        && RE
            .get_or_init(|| fixed_regex(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
            .is_match(s)
}

fn is_dns1035_label(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63
        && RE
            .get_or_init(|| fixed_regex(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))
            .is_match(s)
}

fn is_label_value(s: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63
        && RE
            .get_or_init(|| fixed_regex(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"))
            .is_match(s)
}

/// Why a label or annotation key is not a qualified name
/// (`[prefix/]name`, the prefix a DNS-1123 subdomain).
fn qualified_name_problem(key: &str) -> Option<&'static str> {
    static NAME: OnceLock<Regex> = OnceLock::new();
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > 253 || !dns1123_subdomain_re().is_match(prefix))
    {
        return Some(
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        );
    }
    let name_re = NAME.get_or_init(|| fixed_regex(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"));
    if name.is_empty() || name.len() > 63 || !name_re.is_match(name) {
        return Some(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)",
        );
    }
    None
}

// ---------------------------------------------------------------------------
// Patterns

/// A schema `pattern`, compiled once. Patterns are Go RE2 syntax; the regex
/// crate reads the same syntax, except that Go's `\d`, `\w`, `\s` and `\b` are
/// ASCII-only, which [`go_pattern`] makes explicit. A pattern that does not
/// compile is not checked.
fn cached_regex(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    cache
        .entry(pattern.to_owned())
        .or_insert_with(|| Regex::new(&go_pattern(pattern)).ok())
        .clone()
}

/// Rewrites Go's ASCII-only Perl classes (`\d`, `\w`, `\s`, `\b` and their
/// negations) into their explicit ASCII forms, which the regex crate would
/// otherwise read as Unicode classes.
fn go_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let replacement = match (next, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('D', false) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('s', false) => Some(r"[\t\n\f\r ]"),
                    ('S', false) => Some(r"[^\t\n\f\r ]"),
                    ('b', false) => Some(r"(?-u:\b)"),
                    ('B', false) => Some(r"(?-u:\B)"),
                    ('d', true) => Some("0-9"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('s', true) => Some(r"\t\n\f\r "),
                    ('D', true) => Some("[:^digit:]"),
                    ('W', true) => Some("[:^word:]"),
                    _ => None,
                };
                if let Some(r) = replacement {
                    out.push_str(r);
                } else {
                    out.push('\\');
                    out.push(next);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A leading `^` and a leading `]` belong to the class.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str(r"\]");
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class such as [:alpha:] inside a bracket.
                out.push('[');
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            '[' => out.push_str(r"\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// CEL rules

/// Evaluates the `x-kubernetes-validations` rules below `schema` on `value`.
fn cel_walk(schema: &Value, value: &Value, path: &str, errors: &mut Vec<SchemaError>) {
    if value.is_null() || !schema.is_object() {
        return;
    }
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for rule in rules {
            check_rule(schema, rule, value, path, errors);
        }
    }
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if let Some(child) = schema.get("properties").and_then(|p| p.get(key)) {
                    cel_walk(child, v, &child_path(path, key), errors);
                } else if let Some(child) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    cel_walk(child, v, &format!("{path}[{key}]"), errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    cel_walk(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn check_rule(
    schema: &Value,
    rule: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<SchemaError>,
) {
    let Some(text) = rule.get("rule").and_then(Value::as_str) else {
        return;
    };
    let Ok(expr) = cel::parse(text) else {
        return; // outside the supported subset: not checked
    };
    if expr.mentions("oldSelf") {
        return; // a transition rule: only meaningful on an update
    }
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    let message = match cel::eval_bool(&expr, value) {
        Ok(true) => return,
        Ok(false) => {
            let message = rule
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| format!("failed rule: {text}"), str::to_owned);
            match rule.get("reason").and_then(Value::as_str) {
                Some("FieldValueForbidden") => format!("Forbidden: {message}"),
                Some("FieldValueRequired") => format!("Required value: {message}"),
                Some("FieldValueDuplicate") => format!("Duplicate value: {message}"),
                _ => format!("Invalid value: \"{ty}\": {message}"),
            }
        }
        Err(e) => format!("Invalid value: \"{ty}\": {e} evaluating rule: {text}"),
    };
    let mut at = path.to_owned();
    if let Some(field_path) = rule.get("fieldPath").and_then(Value::as_str) {
        for step in field_path_steps(field_path) {
            at = child_path(&at, &step);
        }
    }
    errors.push(SchemaError::new(&at, message));
}

/// The steps of a rule's `fieldPath` (`.a.b` or `['a'].b`); an unreadable
/// one yields no steps, so the error stays at the rule's own path.
fn field_path_steps(field_path: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let mut rest = field_path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            steps.push(r[..end].to_owned());
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let Some(end) = r.find("']") else {
                return Vec::new();
            };
            steps.push(r[..end].to_owned());
            rest = &r[end + 2..];
        } else {
            return Vec::new();
        }
    }
    steps
}

/// The part of CEL that CRD validation rules on a single object need:
///
/// - literals (strings, integers, floats, booleans, `null`, lists), `self`
///   and comprehension variables;
/// - field selection (`self.a.b`), indexing (`x[0]`, `m['k']`), `has(x.f)`;
/// - `!`, `-`, `&&`, `||` (with CEL's error absorption: `true || error` is
///   `true`), `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `? :`;
/// - `size()` (as a function or a method), `startsWith`, `endsWith`,
///   `contains`, `matches`, and the macros `all`, `exists`, `exists_one`.
///
/// Selecting a field that is absent is an error ("no such key"), as in the
/// API server. A rule using anything else does not parse, and is not checked.
mod cel {
    use std::cmp::Ordering;

    use serde_json::Value;

    /// A parsed expression.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Expr {
        Lit(Value),
        Var(String),
        List(Vec<Expr>),
        Select(Box<Expr>, String),
        Has(Box<Expr>, String),
        Index(Box<Expr>, Box<Expr>),
        /// A function (`size(x)`) or method (`x.size()`) call: receiver,
        /// name, arguments.
        Call(Option<Box<Expr>>, String, Vec<Expr>),
        /// `range.macro(var, body)`.
        Macro(Quantifier, Box<Expr>, String, Box<Expr>),
        Not(Box<Expr>),
        Neg(Box<Expr>),
        And(Box<Expr>, Box<Expr>),
        Or(Box<Expr>, Box<Expr>),
        Compare(Op, Box<Expr>, Box<Expr>),
        Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Quantifier {
        All,
        Exists,
        ExistsOne,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Op {
        Eq,
        Ne,
        Lt,
        Le,
        Gt,
        Ge,
        In,
    }

    impl Expr {
        /// Whether the identifier `name` appears anywhere in the expression.
        pub(super) fn mentions(&self, name: &str) -> bool {
            match self {
                Expr::Lit(_) => false,
                Expr::Var(v) => v == name,
                Expr::List(items) => items.iter().any(|e| e.mentions(name)),
                Expr::Select(e, _) | Expr::Has(e, _) | Expr::Not(e) | Expr::Neg(e) => {
                    e.mentions(name)
                }
                Expr::Index(a, b)
                | Expr::And(a, b)
                | Expr::Or(a, b)
                | Expr::Compare(_, a, b)
                | Expr::Macro(_, a, _, b) => a.mentions(name) || b.mentions(name),
                Expr::Call(receiver, _, args) => {
                    receiver.as_ref().is_some_and(|r| r.mentions(name))
                        || args.iter().any(|e| e.mentions(name))
                }
                Expr::Cond(a, b, c) => a.mentions(name) || b.mentions(name) || c.mentions(name),
            }
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Ident(String),
        Int(i64),
        Float(f64),
        Str(String),
        Punct(&'static str),
    }

    const PUNCTS: [&str; 19] = [
        "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "[", "]", ",", ".", "?", ":",
        "-", "%",
    ];

    fn lex(text: &str) -> Result<Vec<Tok>, String> {
        let mut toks = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if c.is_whitespace() {
                rest = &rest[c.len_utf8()..];
            } else if c.is_ascii_alphabetic() || c == '_' {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                toks.push(Tok::Ident(rest[..end].to_owned()));
                rest = &rest[end..];
            } else if c.is_ascii_digit() {
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                let number = &rest[..end];
                toks.push(if number.contains('.') {
                    Tok::Float(number.parse().map_err(|_| format!("bad number {number}"))?)
                } else {
                    Tok::Int(number.parse().map_err(|_| format!("bad number {number}"))?)
                });
                rest = rest[end..].strip_prefix('u').unwrap_or(&rest[end..]);
            } else if c == '\'' || c == '"' {
                let mut value = String::new();
                let mut chars = rest[1..].char_indices();
                let mut closed = None;
                while let Some((i, ch)) = chars.next() {
                    match ch {
                        '\\' => {
                            let (_, escaped) = chars.next().ok_or("unterminated string")?;
                            value.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' | '\'' | '"' => escaped,
                                other => return Err(format!("unsupported escape \\{other}")),
                            });
                        }
                        ch if ch == c => {
                            closed = Some(i);
                            break;
                        }
                        ch => value.push(ch),
                    }
                }
                let end = closed.ok_or("unterminated string")?;
                toks.push(Tok::Str(value));
                rest = &rest[1 + end + 1..];
            } else if let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                toks.push(Tok::Punct(p));
                rest = &rest[p.len()..];
            } else {
                return Err(format!("unsupported character {c:?}"));
            }
        }
        Ok(toks)
    }

    /// Parses a rule in the supported subset.
    pub(super) fn parse(text: &str) -> Result<Expr, String> {
        let toks = lex(text)?;
        let mut parser = Parser { toks, pos: 0 };
        let expr = parser.expr()?;
        if parser.pos == parser.toks.len() {
            Ok(expr)
        } else {
            Err(format!("unexpected {:?}", parser.toks[parser.pos]))
        }
    }

    struct Parser {
        toks: Vec<Tok>,
        pos: usize,
    }

    impl Parser {
        fn peek_punct(&self, p: &str) -> bool {
            matches!(self.toks.get(self.pos), Some(Tok::Punct(q)) if *q == p)
        }

        fn eat(&mut self, p: &str) -> bool {
            let found = self.peek_punct(p);
            if found {
                self.pos += 1;
            }
            found
        }

        fn expect(&mut self, p: &str) -> Result<(), String> {
            if self.eat(p) {
                Ok(())
            } else {
                Err(format!("expected {p}"))
            }
        }

        fn expr(&mut self) -> Result<Expr, String> {
            let cond = self.or()?;
            if self.eat("?") {
                let then = self.or()?;
                self.expect(":")?;
                let otherwise = self.expr()?;
                return Ok(Expr::Cond(
                    Box::new(cond),
                    Box::new(then),
                    Box::new(otherwise),
                ));
            }
            Ok(cond)
        }

        fn or(&mut self) -> Result<Expr, String> {
            let mut left = self.and()?;
            while self.eat("||") {
                left = Expr::Or(Box::new(left), Box::new(self.and()?));
            }
            Ok(left)
        }

        fn and(&mut self) -> Result<Expr, String> {
            let mut left = self.relation()?;
            while self.eat("&&") {
                left = Expr::And(Box::new(left), Box::new(self.relation()?));
            }
            Ok(left)
        }

        fn relation(&mut self) -> Result<Expr, String> {
            let mut left = self.unary()?;
            loop {
                let op = match self.toks.get(self.pos) {
                    Some(Tok::Punct("==")) => Op::Eq,
                    Some(Tok::Punct("!=")) => Op::Ne,
                    Some(Tok::Punct("<")) => Op::Lt,
                    Some(Tok::Punct("<=")) => Op::Le,
                    Some(Tok::Punct(">")) => Op::Gt,
                    Some(Tok::Punct(">=")) => Op::Ge,
                    Some(Tok::Ident(word)) if word == "in" => Op::In,
                    _ => return Ok(left),
                };
                self.pos += 1;
                left = Expr::Compare(op, Box::new(left), Box::new(self.unary()?));
            }
        }

        fn unary(&mut self) -> Result<Expr, String> {
            if self.eat("!") {
                return Ok(Expr::Not(Box::new(self.unary()?)));
            }
            if self.eat("-") {
                return Ok(Expr::Neg(Box::new(self.unary()?)));
            }
            self.member()
        }

        fn args(&mut self) -> Result<Vec<Expr>, String> {
            let mut args = Vec::new();
            if self.eat(")") {
                return Ok(args);
            }
            loop {
                args.push(self.expr()?);
                if self.eat(")") {
                    return Ok(args);
                }
                self.expect(",")?;
            }
        }

        fn member(&mut self) -> Result<Expr, String> {
            let mut expr = self.primary()?;
            loop {
                if self.eat(".") {
                    let Some(Tok::Ident(name)) = self.toks.get(self.pos).cloned() else {
                        return Err("expected a field name".to_owned());
                    };
                    self.pos += 1;
                    if !self.eat("(") {
                        expr = Expr::Select(Box::new(expr), name);
                        continue;
                    }
                    let mut args = self.args()?;
                    let quantifier = match name.as_str() {
                        "all" => Some(Quantifier::All),
                        "exists" => Some(Quantifier::Exists),
                        "exists_one" => Some(Quantifier::ExistsOne),
                        "size" | "startsWith" | "endsWith" | "contains" | "matches" => None,
                        other => return Err(format!("unsupported method {other}")),
                    };
                    expr = match quantifier {
                        Some(q) => {
                            let (Some(body), Some(Expr::Var(var)), 2) =
                                (args.pop(), args.pop(), args.len() + 2)
                            else {
                                return Err(format!("{name} needs a variable and a predicate"));
                            };
                            Expr::Macro(q, Box::new(expr), var, Box::new(body))
                        }
                        None => Expr::Call(Some(Box::new(expr)), name, args),
                    };
                } else if self.eat("[") {
                    let index = self.expr()?;
                    self.expect("]")?;
                    expr = Expr::Index(Box::new(expr), Box::new(index));
                } else {
                    return Ok(expr);
                }
            }
        }

        fn primary(&mut self) -> Result<Expr, String> {
            let tok = self.toks.get(self.pos).cloned().ok_or("unexpected end")?;
            self.pos += 1;
            match tok {
                Tok::Int(n) => Ok(Expr::Lit(Value::from(n))),
                Tok::Float(f) => Ok(Expr::Lit(Value::from(f))),
                Tok::Str(s) => Ok(Expr::Lit(Value::from(s))),
                Tok::Punct("(") => {
                    let e = self.expr()?;
                    self.expect(")")?;
                    Ok(e)
                }
                Tok::Punct("[") => {
                    let mut items = Vec::new();
                    if !self.eat("]") {
                        loop {
                            items.push(self.expr()?);
                            if self.eat("]") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    Ok(Expr::List(items))
                }
                Tok::Ident(name) => match name.as_str() {
                    "true" => Ok(Expr::Lit(Value::Bool(true))),
                    "false" => Ok(Expr::Lit(Value::Bool(false))),
                    "null" => Ok(Expr::Lit(Value::Null)),
                    "has" if self.eat("(") => {
                        let arg = self.expr()?;
                        self.expect(")")?;
                        match arg {
                            Expr::Select(object, field) => Ok(Expr::Has(object, field)),
                            _ => Err("has() needs a field selection".to_owned()),
                        }
                    }
                    "size" if self.eat("(") => {
                        let args = self.args()?;
                        Ok(Expr::Call(None, name, args))
                    }
                    _ if self.peek_punct("(") => Err(format!("unsupported function {name}")),
                    _ => Ok(Expr::Var(name)),
                },
                Tok::Punct(p) => Err(format!("unexpected {p}")),
            }
        }
    }

    /// Evaluates a rule with `self` bound to `value`; a rule must yield a
    /// boolean.
    pub(super) fn eval_bool(expr: &Expr, value: &Value) -> Result<bool, String> {
        let mut scope = vec![("self".to_owned(), value.clone())];
        as_bool(&eval(expr, &mut scope)?)
    }

    fn as_bool(v: &Value) -> Result<bool, String> {
        v.as_bool().ok_or_else(|| "no matching overload".to_owned())
    }

    type Scope = Vec<(String, Value)>;

    fn eval(expr: &Expr, scope: &mut Scope) -> Result<Value, String> {
        match expr {
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Var(name) => scope
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("undeclared reference to '{name}'")),
            Expr::List(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|e| eval(e, scope))
                    .collect::<Result<_, _>>()?,
            )),
            Expr::Select(object, field) => match eval(object, scope)? {
                Value::Object(mut map) => map
                    .remove(field)
                    .ok_or_else(|| format!("no such key: {field}")),
                _ => Err(format!("no such key: {field}")),
            },
            Expr::Has(object, field) => match eval(object, scope)? {
                Value::Object(map) => Ok(Value::Bool(map.contains_key(field))),
                _ => Err("no matching overload for has()".to_owned()),
            },
            Expr::Index(object, index) => {
                let object = eval(object, scope)?;
                let index = eval(index, scope)?;
                match (&object, &index) {
                    (Value::Array(items), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| usize::try_from(i).ok())
                        .and_then(|i| items.get(i))
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {n}")),
                    (Value::Object(map), Value::String(key)) => map
                        .get(key)
                        .cloned()
                        .ok_or_else(|| format!("no such key: {key}")),
                    _ => Err("no matching overload for index".to_owned()),
                }
            }
            Expr::Call(receiver, name, args) => {
                let mut values = Vec::new();
                if let Some(r) = receiver {
                    values.push(eval(r, scope)?);
                }
                for a in args {
                    values.push(eval(a, scope)?);
                }
                call(name, &values)
            }
            Expr::Macro(quantifier, range, var, body) => {
                let items: Vec<Value> = match eval(range, scope)? {
                    Value::Array(items) => items,
                    Value::Object(map) => map.keys().cloned().map(Value::from).collect(),
                    _ => return Err("no matching overload for a macro".to_owned()),
                };
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    scope.push((var.clone(), item));
                    results.push(eval(body, scope).and_then(|v| as_bool(&v)));
                    scope.pop();
                }
                quantify(*quantifier, results)
            }
            Expr::Not(e) => Ok(Value::Bool(!as_bool(&eval(e, scope)?)?)),
            Expr::Neg(e) => match eval(e, scope)? {
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        i.checked_neg()
                            .map(Value::from)
                            .ok_or_else(|| "integer overflow".to_owned())
                    } else {
                        Ok(Value::from(-n.as_f64().unwrap_or(f64::NAN)))
                    }
                }
                _ => Err("no matching overload for -".to_owned()),
            },
            Expr::And(a, b) => {
                let left = eval(a, scope).and_then(|v| as_bool(&v));
                if left == Ok(false) {
                    return Ok(Value::Bool(false));
                }
                let right = eval(b, scope).and_then(|v| as_bool(&v));
                match (left, right) {
                    (_, Ok(false)) => Ok(Value::Bool(false)),
                    // `left` is not false: that returned early
                    (Ok(_), Ok(_)) => Ok(Value::Bool(true)),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
            Expr::Or(a, b) => {
                let left = eval(a, scope).and_then(|v| as_bool(&v));
                if left == Ok(true) {
                    return Ok(Value::Bool(true));
                }
                let right = eval(b, scope).and_then(|v| as_bool(&v));
                match (left, right) {
                    (_, Ok(true)) => Ok(Value::Bool(true)),
                    // `left` is not true: that returned early
                    (Ok(_), Ok(_)) => Ok(Value::Bool(false)),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
            Expr::Compare(op, a, b) => {
                let (a, b) = (eval(a, scope)?, eval(b, scope)?);
                compare(*op, &a, &b).map(Value::Bool)
            }
            Expr::Cond(cond, then, otherwise) => {
                if as_bool(&eval(cond, scope)?)? {
                    eval(then, scope)
                } else {
                    eval(otherwise, scope)
                }
            }
        }
    }

    fn quantify(
        quantifier: Quantifier,
        results: Vec<Result<bool, String>>,
    ) -> Result<Value, String> {
        match quantifier {
            Quantifier::All => {
                if results.iter().any(|r| r == &Ok(false)) {
                    return Ok(Value::Bool(false));
                }
                results.into_iter().collect::<Result<Vec<_>, _>>()?;
                Ok(Value::Bool(true))
            }
            Quantifier::Exists => {
                if results.iter().any(|r| r == &Ok(true)) {
                    return Ok(Value::Bool(true));
                }
                results.into_iter().collect::<Result<Vec<_>, _>>()?;
                Ok(Value::Bool(false))
            }
            Quantifier::ExistsOne => {
                let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
                Ok(Value::Bool(results.iter().filter(|b| **b).count() == 1))
            }
        }
    }

    fn call(name: &str, values: &[Value]) -> Result<Value, String> {
        let overload = || format!("no matching overload for {name}");
        match (name, values) {
            ("size", [Value::String(s)]) => Ok(Value::from(s.chars().count())),
            ("size", [Value::Array(items)]) => Ok(Value::from(items.len())),
            ("size", [Value::Object(map)]) => Ok(Value::from(map.len())),
            ("startsWith", [Value::String(s), Value::String(p)]) => {
                Ok(Value::Bool(s.starts_with(p.as_str())))
            }
            ("endsWith", [Value::String(s), Value::String(p)]) => {
                Ok(Value::Bool(s.ends_with(p.as_str())))
            }
            ("contains", [Value::String(s), Value::String(p)]) => {
                Ok(Value::Bool(s.contains(p.as_str())))
            }
            ("matches", [Value::String(s), Value::String(p)]) => super::cached_regex(p)
                .map(|re| Value::Bool(re.is_match(s)))
                .ok_or_else(|| format!("invalid regex {p}")),
            _ => Err(overload()),
        }
    }

    fn compare(op: Op, a: &Value, b: &Value) -> Result<bool, String> {
        let ordering = || -> Result<Ordering, String> {
            match (a, b) {
                (Value::Number(_), Value::Number(_)) => super::number_cmp(a, b),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
                _ => None,
            }
            .ok_or_else(|| "no matching overload for comparison".to_owned())
        };
        Ok(match op {
            Op::Eq => super::values_equal(a, b),
            Op::Ne => !super::values_equal(a, b),
            Op::Lt => ordering()? == Ordering::Less,
            Op::Le => ordering()? != Ordering::Greater,
            Op::Gt => ordering()? == Ordering::Greater,
            Op::Ge => ordering()? != Ordering::Less,
            Op::In => match b {
                Value::Array(items) => items.iter().any(|item| super::values_equal(item, a)),
                Value::Object(map) => a.as_str().is_some_and(|k| map.contains_key(k)),
                _ => return Err("no matching overload for in".to_owned()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: &Value, doc: &Value) -> Vec<(String, String)> {
        validate_against(schema, doc)
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    }

    #[track_caller]
    fn ok(schema: &Value, doc: &Value) {
        let errors = errors(schema, doc);
        assert!(
            errors.is_empty(),
            "expected no errors for {doc}, got {errors:?}"
        );
    }

    #[track_caller]
    fn one(schema: &Value, doc: &Value) -> (String, String) {
        let errors = errors(schema, doc);
        assert_eq!(
            errors.len(),
            1,
            "expected one error for {doc}, got {errors:?}"
        );
        errors.into_iter().next().unwrap_or_default()
    }

    fn err(path: &str, message: &str) -> (String, String) {
        (path.to_owned(), message.to_owned())
    }

    /// An object schema with one property `x`.
    fn field(schema: &Value) -> Value {
        json!({"type": "object", "properties": {"x": schema}})
    }

    #[test]
    fn type_keyword() {
        let cases = [
            ("object", json!({}), json!([])),
            ("array", json!([]), json!({})),
            ("string", json!("a"), json!(1)),
            ("integer", json!(3), json!(1.5)),
            ("number", json!(1.5), json!("1.5")),
            ("boolean", json!(true), json!("true")),
        ];
        for (ty, good, bad) in cases {
            let schema = field(&json!({"type": ty}));
            ok(&schema, &json!({"x": good}));
            let (path, message) = one(&schema, &json!({"x": bad}));
            assert_eq!(path, "x");
            assert_eq!(
                message,
                format!(
                    "Invalid value: \"{}\": must be of type {ty}",
                    json_type(&bad)
                )
            );
        }
        // Integers are numbers; an integral float is an integer.
        ok(&field(&json!({"type": "number"})), &json!({"x": 2}));
        ok(&field(&json!({"type": "integer"})), &json!({"x": 2.0}));
        assert_eq!(
            one(&field(&json!({"type": "integer"})), &json!({"x": "string"})),
            err("x", "Invalid value: \"string\": must be of type integer")
        );
    }

    #[test]
    fn properties_and_unknown_fields() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}
        });
        ok(&schema, &json!({"a": {"b": "x"}}));
        assert_eq!(
            one(&schema, &json!({"a": {"b": "x", "c": 1}})),
            err("a.c", "unknown field")
        );
        assert_eq!(one(&schema, &json!({"z": 1})), err("z", "unknown field"));
        assert_eq!(
            one(&schema, &json!({"a": {"b": 1}})),
            err("a.b", "Invalid value: \"integer\": must be of type string")
        );
    }

    #[test]
    fn required_keyword() {
        let schema = json!({
            "type": "object",
            "required": ["a"],
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}}
        });
        ok(&schema, &json!({"a": "x"}));
        assert_eq!(one(&schema, &json!({"b": "x"})), err("a", "Required value"));
        // A null in a non-nullable field is dropped, so the field is missing.
        assert_eq!(
            one(&schema, &json!({"a": null})),
            err("a", "Required value")
        );
    }

    #[test]
    fn default_fills_required_and_null() {
        let schema = json!({
            "type": "object",
            "required": ["n"],
            "properties": {
                "n": {"type": "integer", "default": 1, "minimum": 1},
                "s": {"type": "string"}
            }
        });
        ok(&schema, &json!({}));
        ok(&schema, &json!({"n": null, "s": null}));
        assert_eq!(
            one(&schema, &json!({"n": 0})),
            err(
                "n",
                "Invalid value: 0: should be greater than or equal to 1"
            )
        );
    }

    #[test]
    fn additional_properties_keyword() {
        let schema = field(&json!({"type": "object", "additionalProperties": {"type": "string"}}));
        ok(&schema, &json!({"x": {"a": "1", "b": "2"}}));
        assert_eq!(
            one(&schema, &json!({"x": {"a": "1", "b": 2}})),
            err("x[b]", "Invalid value: \"integer\": must be of type string")
        );
        let open = field(&json!({"type": "object", "additionalProperties": true}));
        ok(&open, &json!({"x": {"anything": [1, {"a": null}]}}));
        let closed = field(&json!({"type": "object", "additionalProperties": false}));
        assert_eq!(
            one(&closed, &json!({"x": {"a": 1}})),
            err("x.a", "unknown field")
        );
    }

    #[test]
    fn items_keyword() {
        let schema = field(
            &json!({"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}),
        );
        ok(&schema, &json!({"x": [{"name": "a"}, {"name": "b"}]}));
        assert_eq!(
            one(&schema, &json!({"x": [{"name": "a"}, {}]})),
            err("x[1].name", "Required value")
        );
        assert_eq!(
            one(
                &field(&json!({"type": "array", "items": {"type": "string"}})),
                &json!({"x": ["a", null]})
            ),
            err("x[1]", "Invalid value: \"null\": must be of type string")
        );
    }

    #[test]
    fn enum_keyword() {
        let schema = field(&json!({"type": "string", "enum": ["a", "b"]}));
        ok(&schema, &json!({"x": "b"}));
        assert_eq!(
            one(&schema, &json!({"x": "c"})),
            err(
                "x",
                "Unsupported value: \"c\": supported values: \"a\", \"b\""
            )
        );
        let numbers = field(&json!({"type": "integer", "enum": [1, 2]}));
        ok(&numbers, &json!({"x": 2}));
        assert_eq!(
            one(&numbers, &json!({"x": 3})),
            err("x", "Unsupported value: 3: supported values: 1, 2")
        );
    }

    #[test]
    fn pattern_keyword() {
        let schema = field(&json!({"type": "string", "pattern": "^[1-9][0-9]*[dwm]$"}));
        ok(&schema, &json!({"x": "30d"}));
        assert_eq!(
            one(&schema, &json!({"x": "30 days"})),
            err(
                "x",
                "Invalid value: \"30 days\": should match '^[1-9][0-9]*[dwm]$'"
            )
        );
        // Unanchored patterns search.
        ok(
            &field(&json!({"type": "string", "pattern": "b"})),
            &json!({"x": "abc"}),
        );
        // Go's \d is ASCII only.
        let digits = field(&json!({"type": "string", "pattern": r"^\d+$"}));
        ok(&digits, &json!({"x": "123"}));
        assert_eq!(errors(&digits, &json!({"x": "١٢٣"})).len(), 1);
        // A pattern that does not compile is not checked.
        ok(
            &field(&json!({"type": "string", "pattern": "(?<=a)b"})),
            &json!({"x": "zz"}),
        );
    }

    #[test]
    fn go_pattern_rewrites_perl_classes() {
        assert_eq!(go_pattern(r"^\d\w\s$"), r"^[0-9][0-9A-Za-z_][\t\n\f\r ]$");
        assert_eq!(go_pattern(r"[\d.]"), "[0-9.]");
        assert_eq!(go_pattern(r"[^\]a]"), r"[^\]a]");
        assert_eq!(go_pattern(r"[[:alpha:]\d]"), "[[:alpha:]0-9]");
        assert_eq!(go_pattern(r"\.\\d"), r"\.\\d");
        for p in [r"\bword\b", r"[\D]", r"[\W\s]", r"\S+\B"] {
            assert!(
                Regex::new(&go_pattern(p)).is_ok(),
                "{p} -> {}",
                go_pattern(p)
            );
        }
    }

    #[test]
    fn format_keyword() {
        let int32 = field(&json!({"type": "integer", "format": "int32"}));
        ok(&int32, &json!({"x": 2_147_483_647}));
        assert_eq!(
            one(&int32, &json!({"x": 2_147_483_648_i64})),
            err("x", "Invalid value: 2147483648: must be of type int32")
        );
        let int64 = field(&json!({"type": "integer", "format": "int64"}));
        ok(&int64, &json!({"x": i64::MIN}));
        assert_eq!(errors(&int64, &json!({"x": u64::MAX})).len(), 1);
        let time = field(&json!({"type": "string", "format": "date-time"}));
        ok(&time, &json!({"x": "2026-11-24T16:47:19Z"}));
        ok(&time, &json!({"x": "2026-11-24T16:47:19.817057+00:00"}));
        assert_eq!(
            one(&time, &json!({"x": "yesterday"})),
            err(
                "x",
                "Invalid value: \"yesterday\": must be of type date-time"
            )
        );
        let date = field(&json!({"type": "string", "format": "date"}));
        ok(&date, &json!({"x": "2026-02-28"}));
        assert_eq!(errors(&date, &json!({"x": "2026-02-30"})).len(), 1);
        let bytes = field(&json!({"type": "string", "format": "byte"}));
        ok(&bytes, &json!({"x": "aGVsbG8="}));
        assert_eq!(errors(&bytes, &json!({"x": "not base64!"})).len(), 1);
        // Unknown formats are not checked.
        ok(
            &field(&json!({"type": "string", "format": "hostname-ish"})),
            &json!({"x": "%%"}),
        );
    }

    #[test]
    fn minimum_maximum_keywords() {
        let schema = field(&json!({"type": "integer", "minimum": 1, "maximum": 10}));
        ok(&schema, &json!({"x": 1}));
        ok(&schema, &json!({"x": 10}));
        assert_eq!(
            one(&schema, &json!({"x": 0})),
            err(
                "x",
                "Invalid value: 0: should be greater than or equal to 1"
            )
        );
        assert_eq!(
            one(&schema, &json!({"x": 11})),
            err("x", "Invalid value: 11: should be less than or equal to 10")
        );
        let exclusive = field(&json!({
            "type": "number", "minimum": 0, "exclusiveMinimum": true,
            "maximum": 1, "exclusiveMaximum": true
        }));
        ok(&exclusive, &json!({"x": 0.5}));
        assert_eq!(
            one(&exclusive, &json!({"x": 0})),
            err("x", "Invalid value: 0: should be greater than 0")
        );
        assert_eq!(
            one(&exclusive, &json!({"x": 1})),
            err("x", "Invalid value: 1: should be less than 1")
        );
    }

    #[test]
    fn length_keywords() {
        let schema = field(&json!({"type": "string", "minLength": 2, "maxLength": 3}));
        ok(&schema, &json!({"x": "ab"}));
        ok(&schema, &json!({"x": "été"}));
        assert_eq!(
            one(&schema, &json!({"x": "a"})),
            err("x", "Invalid value: \"a\": must be at least 2 characters")
        );
        assert_eq!(
            one(&schema, &json!({"x": "abcd"})),
            err("x", "Too long: must be no more than 3 characters")
        );
    }

    #[test]
    fn item_count_keywords() {
        let schema = field(&json!({"type": "array", "minItems": 1, "maxItems": 2}));
        ok(&schema, &json!({"x": [1]}));
        assert_eq!(
            one(&schema, &json!({"x": []})),
            err(
                "x",
                "Invalid value: \"array\": should have at least 1 items"
            )
        );
        assert_eq!(
            one(&schema, &json!({"x": [1, 2, 3]})),
            err("x", "Too many: 3: must have at most 2 items")
        );
    }

    #[test]
    fn property_count_keywords() {
        let schema = field(&json!({
            "type": "object", "minProperties": 1, "maxProperties": 2,
            "additionalProperties": {"type": "string"}
        }));
        ok(&schema, &json!({"x": {"a": "1"}}));
        assert_eq!(
            one(&schema, &json!({"x": {}})),
            err(
                "x",
                "Invalid value: \"object\": should have at least 1 properties"
            )
        );
        assert_eq!(
            one(&schema, &json!({"x": {"a": "1", "b": "2", "c": "3"}})),
            err("x", "Too many: 3: must have at most 2 properties")
        );
    }

    #[test]
    fn nullable_keyword() {
        let nullable = field(&json!({"type": "string", "nullable": true}));
        ok(&nullable, &json!({"x": null}));
        let items = field(&json!({"type": "array", "items": {"type": "string", "nullable": true}}));
        ok(&items, &json!({"x": [null, "a"]}));
        let not_nullable = field(&json!({"type": "array", "items": {"type": "string"}}));
        assert_eq!(errors(&not_nullable, &json!({"x": [null]})).len(), 1);
    }

    #[test]
    fn int_or_string_keyword() {
        let schema = field(&json!({
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": true,
            "pattern": "^[0-9]+(Mi|Gi)?$"
        }));
        ok(&schema, &json!({"x": 5}));
        ok(&schema, &json!({"x": "5Gi"}));
        assert_eq!(
            one(&schema, &json!({"x": "5 GB"})),
            err(
                "x",
                "Invalid value: \"5 GB\": should match '^[0-9]+(Mi|Gi)?$'"
            )
        );
        assert_eq!(
            one(&schema, &json!({"x": true})),
            err(
                "x",
                "Invalid value: \"boolean\": must be of type integer or string"
            )
        );
    }

    #[test]
    fn preserve_unknown_fields_keyword() {
        let schema = field(&json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"known": {"type": "integer"}}
        }));
        ok(
            &schema,
            &json!({"x": {"known": 1, "other": {"deep": true}}}),
        );
        assert_eq!(
            one(&schema, &json!({"x": {"known": "1"}})),
            err(
                "x.known",
                "Invalid value: \"string\": must be of type integer"
            )
        );
    }

    #[test]
    fn embedded_resource_keyword() {
        let schema = field(&json!({
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}
        }));
        ok(
            &schema,
            &json!({"x": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"labels": {"a": "b"}}, "spec": {"a": "x"}}}),
        );
        assert_eq!(
            errors(
                &schema,
                &json!({"x": {"spec": {}, "metadata": {"nmae": "x"}}})
            ),
            vec![
                err("x.metadata.nmae", "unknown field"),
                err("x.apiVersion", "Required value"),
                err("x.kind", "Required value"),
            ]
        );
    }

    #[test]
    fn list_type_keywords() {
        let set = field(
            &json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}),
        );
        ok(&set, &json!({"x": ["a", "b"]}));
        assert_eq!(
            one(&set, &json!({"x": ["a", "b", "a"]})),
            err("x[2]", "Duplicate value: \"a\"")
        );
        let map = field(&json!({
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}
        }));
        ok(
            &map,
            &json!({"x": [{"name": "a", "v": 1}, {"name": "b", "v": 1}]}),
        );
        assert_eq!(
            one(
                &map,
                &json!({"x": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]})
            ),
            err("x[1]", "Duplicate value: {\"name\":\"a\"}")
        );
        // Items without their key are not compared.
        ok(&map, &json!({"x": [{"v": 1}, {"v": 1}]}));
    }

    #[test]
    fn junctor_keywords() {
        let all_of =
            field(&json!({"type": "string", "allOf": [{"minLength": 2}, {"maxLength": 3}]}));
        ok(&all_of, &json!({"x": "ab"}));
        assert_eq!(errors(&all_of, &json!({"x": "abcd"})).len(), 1);

        let any_of = field(
            &json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}),
        );
        ok(&any_of, &json!({"x": {"b": "1"}}));
        let found = errors(&any_of, &json!({"x": {}}));
        assert_eq!(
            found[0],
            err(
                "x",
                "Invalid value: \"object\": must validate at least one schema (anyOf)"
            )
        );

        let one_of = field(
            &json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}),
        );
        ok(&one_of, &json!({"x": {"a": "1"}}));
        assert_eq!(
            errors(&one_of, &json!({"x": {"a": "1", "b": "2"}})),
            vec![err(
                "x",
                "Invalid value: \"object\": must validate one and only one schema (oneOf)"
            )]
        );

        let not = field(&json!({"type": "string", "not": {"enum": ["forbidden"]}}));
        ok(&not, &json!({"x": "fine"}));
        assert_eq!(
            one(&not, &json!({"x": "forbidden"})),
            err(
                "x",
                "Invalid value: \"forbidden\": must not validate the schema (not)"
            )
        );
    }

    #[test]
    fn root_metadata_is_object_meta() {
        let schema = json!({
            "type": "object",
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
        });
        ok(
            &schema,
            &json!({"metadata": {"name": "a.b-c", "namespace": "db", "labels": {"app.kubernetes.io/name": "pg"}, "annotations": {"x/y": "any thing"}}}),
        );
        assert_eq!(
            errors(
                &schema,
                &json!({"metadata": {"name": "Bad_Name", "namespace": "a.b", "label": {}}})
            ),
            vec![
                err(
                    "metadata.name",
                    "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
                err(
                    "metadata.namespace",
                    "Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
                ),
                err("metadata.label", "unknown field"),
            ]
        );
        assert_eq!(
            one(&schema, &json!({"metadata": {"labels": {"enabled": true}}})),
            err(
                "metadata.labels[enabled]",
                "Invalid value: \"boolean\": must be of type string"
            )
        );
        assert_eq!(
            errors(
                &schema,
                &json!({"metadata": {"labels": {"a": "has space"}}})
            )
            .len(),
            1
        );
        assert_eq!(
            errors(
                &schema,
                &json!({"metadata": {"annotations": {"-bad": "x"}}})
            )
            .len(),
            1
        );
    }

    #[test]
    fn cel_rules() {
        let schema = field(&json!({
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "string"},
                "n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "message": "must be positive"}]},
                "args": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [
                    {"rule": "!self.exists(a, a.startsWith('--log-level'))", "message": "no log level", "reason": "FieldValueForbidden"}
                ]},
                "c": {"type": "object", "properties": {"s": {"type": "string"}}, "x-kubernetes-validations": [
                    {"rule": "!has(self.s)", "message": "s is forbidden", "fieldPath": ".s", "reason": "FieldValueForbidden"}
                ]},
                "fixed": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]}
            },
            "x-kubernetes-validations": [
                {"rule": "!(has(self.a) && has(self.b))", "message": "a and b are mutually exclusive"},
                {"rule": "!has(self.a) || self.b == 'x'"}
            ]
        }));
        ok(
            &schema,
            &json!({"x": {"b": "y", "n": 2, "args": ["--x"], "c": {}, "fixed": "z"}}),
        );
        assert_eq!(
            errors(&schema, &json!({"x": {"a": "1", "b": "y"}})),
            vec![
                err(
                    "x",
                    "Invalid value: \"object\": a and b are mutually exclusive"
                ),
                err(
                    "x",
                    "Invalid value: \"object\": failed rule: !has(self.a) || self.b == 'x'"
                ),
            ]
        );
        // An absent field is an evaluation error, as in the API server.
        assert_eq!(
            one(&schema, &json!({"x": {"a": "1"}})),
            err(
                "x",
                "Invalid value: \"object\": no such key: b evaluating rule: !has(self.a) || self.b == 'x'"
            )
        );
        assert_eq!(
            one(&schema, &json!({"x": {"n": 0}})),
            err("x.n", "Invalid value: \"integer\": must be positive")
        );
        assert_eq!(
            one(&schema, &json!({"x": {"args": ["--log-level=debug"]}})),
            err("x.args", "Forbidden: no log level")
        );
        assert_eq!(
            one(&schema, &json!({"x": {"c": {"s": "v"}}})),
            err("x.c.s", "Forbidden: s is forbidden")
        );
        // Not evaluated when a type is wrong.
        assert_eq!(
            errors(&schema, &json!({"x": {"n": "0", "a": "1", "b": "y"}})),
            vec![err(
                "x.n",
                "Invalid value: \"string\": must be of type integer"
            )]
        );
    }

    #[test]
    fn cel_subset() {
        let eval =
            |rule: &str, value: Value| cel::eval_bool(&cel::parse(rule).expect(rule), &value);
        assert_eq!(
            eval("self.size() == 2 && size(self) == 2", json!([1, 2])),
            Ok(true)
        );
        assert_eq!(eval("self.all(x, x > 0)", json!([1, 2])), Ok(true));
        assert_eq!(eval("self.exists_one(x, x == 1)", json!([1, 1])), Ok(false));
        assert_eq!(
            eval("'a' in self && !('c' in self)", json!({"a": 1})),
            Ok(true)
        );
        assert_eq!(
            eval("self.v in ['x', 'y'] ? true : false", json!({"v": "y"})),
            Ok(true)
        );
        assert_eq!(
            eval(
                "self.s.matches('^[a-z]+$') && self.s.endsWith('c')",
                json!({"s": "abc"})
            ),
            Ok(true)
        );
        assert_eq!(eval("self['k'][0] >= -1", json!({"k": [0]})), Ok(true));
        assert_eq!(eval(r#"self == "it's""#, json!("it's")), Ok(true));
        // CEL's error absorption.
        assert_eq!(eval("self.missing == 1 || true", json!({})), Ok(true));
        assert_eq!(eval("self.missing == 1 && false", json!({})), Ok(false));
        assert!(eval("self.missing == 1 || false", json!({})).is_err());
        // Outside the subset: no parse.
        for rule in [
            "self.map(x, x + 1)",
            "int(self) > 1",
            "self + 1 > 2",
            "type(self) == string",
        ] {
            assert!(cel::parse(rule).is_err(), "{rule}");
        }
        assert!(
            cel::parse("self == oldSelf")
                .expect("parses")
                .mentions("oldSelf")
        );
    }

    #[test]
    fn field_path_steps_reads_dots_and_brackets() {
        assert_eq!(field_path_steps(".a.b"), ["a", "b"]);
        assert_eq!(field_path_steps(".a['b.c']"), ["a", "b.c"]);
        assert!(field_path_steps("a").is_empty());
    }

    // -- the vendored CRDs --------------------------------------------------

    fn doc(yaml: &str) -> Value {
        let mut docs = crate::yaml::parse_values(yaml).expect("test YAML parses");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[track_caller]
    fn check(yaml: &str) -> Vec<(String, String)> {
        validate(&doc(yaml))
            .expect("a vendored kind")
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    }

    #[track_caller]
    fn valid(yaml: &str) {
        let errors = check(yaml);
        assert!(errors.is_empty(), "unexpected errors: {errors:?}");
    }

    const CLUSTER: &str = "\
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg-main
  namespace: db
spec:
  instances: 3
  storage:
    size: 10Gi
";

    /// Collects the `pattern`s and CEL rules of a schema.
    fn collect(schema: &Value, found: &mut Vec<String>, rules: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if let Some(Value::String(p)) = map.get("pattern") {
                    found.push(p.clone());
                }
                if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
                    rules.extend(
                        list.iter()
                            .filter_map(|r| r.get("rule")?.as_str().map(str::to_owned)),
                    );
                }
                for (key, v) in map {
                    if key != "enum" && key != "default" {
                        collect(v, found, rules);
                    }
                }
            }
            Value::Array(items) => {
                for v in items {
                    collect(v, found, rules);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn all_crds_load_and_their_patterns_compile() {
        let loaded: Vec<(&str, &str)> = crds()
            .iter()
            .map(|crd| (crd.group.as_str(), crd.kind.as_str()))
            .collect();
        assert_eq!(
            loaded,
            [
                ("postgresql.cnpg.io", "Cluster"),
                ("postgresql.cnpg.io", "Backup"),
                ("postgresql.cnpg.io", "ScheduledBackup"),
                ("postgresql.cnpg.io", "Database"),
                ("barmancloud.cnpg.io", "ObjectStore"),
                ("kustomize.toolkit.fluxcd.io", "Kustomization"),
            ]
        );
        let (mut patterns, mut rules) = (Vec::new(), Vec::new());
        for crd in crds() {
            assert!(!crd.versions.is_empty());
            for (_, _, schema) in &crd.versions {
                assert_eq!(schema.get("type"), Some(&json!("object")));
                collect(schema, &mut patterns, &mut rules);
            }
        }
        assert!(patterns.len() >= 30, "{} patterns", patterns.len());
        for p in &patterns {
            assert!(cached_regex(p).is_some(), "pattern does not compile: {p}");
        }
        // Every rule is either evaluated or a transition rule.
        assert!(rules.len() >= 36, "{} rules", rules.len());
        for rule in &rules {
            let parsed = cel::parse(rule);
            assert!(
                parsed.is_ok(),
                "rule outside the supported CEL subset: {rule}: {parsed:?}"
            );
        }
    }

    #[test]
    fn schema_for_served_versions() {
        assert!(schema_for("postgresql.cnpg.io/v1", "Cluster").is_some());
        assert!(schema_for("kustomize.toolkit.fluxcd.io/v1", "Kustomization").is_some());
        assert!(schema_for("postgresql.cnpg.io/v1beta1", "Cluster").is_none());
        assert!(schema_for("kustomize.config.k8s.io/v1beta1", "Kustomization").is_none());
    }

    #[test]
    fn unknown_kinds_are_skipped() {
        for yaml in [
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: db\n",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: b\n",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- a.yaml\n",
            "apiVersion: postgresql.cnpg.io/v1\nkind: Pooler\nmetadata:\n  name: p\n",
        ] {
            let d = doc(yaml);
            let error = validate(&d).expect_err(yaml);
            assert_eq!(Some(error.kind.as_str()), d["kind"].as_str());
        }
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            check("metadata:\n  name: x\n"),
            [
                err("apiVersion", "Required value"),
                err("kind", "Required value")
            ]
        );
        assert_eq!(
            check(
                "apiVersion: kustomize.toolkit.fluxcd.io/v1beta2\nkind: Kustomization\nmetadata:\n  name: x\n"
            ),
            [err(
                "apiVersion",
                "Unsupported value: \"kustomize.toolkit.fluxcd.io/v1beta2\": supported values: \"kustomize.toolkit.fluxcd.io/v1\""
            )]
        );
        assert_eq!(
            validate(&json!([1])),
            Ok(vec![SchemaError::new(
                "",
                "Invalid value: \"array\": must be of type object"
            )])
        );
    }

    #[test]
    fn minimal_cluster() {
        valid(CLUSTER);
        // instances is required but has a default.
        valid(
            "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\nspec:\n  storage:\n    size: 1Gi\n",
        );
    }

    #[test]
    fn cluster_needs_a_name_and_a_spec() {
        assert_eq!(
            check("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  namespace: db\n"),
            [
                err("metadata.name", "Required value"),
                err("spec", "Required value")
            ]
        );
    }

    #[test]
    fn cluster_name_is_a_dns_label_of_at_most_50_characters() {
        assert_eq!(
            check(&CLUSTER.replace("name: pg-main", "name: pg.main")),
            [err(
                "metadata.name",
                "Invalid value: \"pg.main\": cluster name must be a valid DNS label"
            )]
        );
        assert_eq!(
            check(&CLUSTER.replace("name: pg-main", "name: 1pg")),
            [err(
                "metadata.name",
                "Invalid value: \"1pg\": cluster name must be a valid DNS label"
            )]
        );
        let long = "a".repeat(51);
        assert_eq!(
            check(&CLUSTER.replace("name: pg-main", &format!("name: {long}"))),
            [err(
                "metadata.name",
                &format!(
                    "Invalid value: \"{long}\": the maximum length of a cluster name is 50 characters"
                )
            )]
        );
        // Other kinds only need a DNS-1123 subdomain.
        valid(
            "apiVersion: postgresql.cnpg.io/v1\nkind: ScheduledBackup\nmetadata:\n  name: 1.daily\nspec:\n  cluster:\n    name: pg\n  schedule: '0 0 0 * * *'\n",
        );
    }

    #[test]
    fn cluster_with_a_typo() {
        assert_eq!(
            check(&CLUSTER.replace("  storage:\n", "  storgae:\n")),
            [err("spec.storgae", "unknown field")]
        );
        assert_eq!(
            check(&format!(
                "{CLUSTER}  postgresql:\n    parameter:\n      max_connections: '200'\n"
            )),
            [err("spec.postgresql.parameter", "unknown field")]
        );
    }

    #[test]
    fn cluster_wrong_types_and_enums() {
        assert_eq!(
            check(&CLUSTER.replace("instances: 3", "instances: three")),
            [err(
                "spec.instances",
                "Invalid value: \"string\": must be of type integer"
            )]
        );
        assert_eq!(
            check(&format!("{CLUSTER}  backup:\n    target: standby\n")),
            [err(
                "spec.backup.target",
                "Unsupported value: \"standby\": supported values: \"primary\", \"prefer-standby\""
            )]
        );
    }

    #[test]
    fn cluster_bad_retention_policy() {
        assert_eq!(
            check(&format!(
                "{CLUSTER}  backup:\n    retentionPolicy: 30days\n"
            )),
            [err(
                "spec.backup.retentionPolicy",
                "Invalid value: \"30days\": should match '^[1-9][0-9]*[dwm]$'"
            )]
        );
        valid(&format!("{CLUSTER}  backup:\n    retentionPolicy: 30d\n"));
    }

    #[test]
    fn cluster_quantities_are_int_or_string() {
        valid(&format!(
            "{CLUSTER}  resources:\n    requests:\n      memory: 1Gi\n      cpu: 2\n"
        ));
        assert_eq!(
            check(&format!(
                "{CLUSTER}  resources:\n    requests:\n      memory: 1 GB\n"
            )),
            [err(
                "spec.resources.requests[memory]",
                "Invalid value: \"1 GB\": should match '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$'"
            )]
        );
    }

    #[test]
    fn recovery_cluster_with_the_plugin() {
        valid(
            "\
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg-restore
  namespace: db
  labels:
    app.kubernetes.io/part-of: billing
spec:
  instances: 3
  imageName: ghcr.io/cloudnative-pg/postgresql:17.6
  storage:
    size: 10Gi
    storageClass: fast
  bootstrap:
    recovery:
      source: origin
      database: app
      owner: app
      recoveryTarget:
        targetTime: '2026-11-24T16:47:19Z'
  externalClusters:
  - name: origin
    plugin:
      name: barman-cloud.cloudnative-pg.io
      parameters:
        barmanObjectName: store
        serverName: pg-main
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    isWALArchiver: true
    parameters:
      barmanObjectName: store
      serverName: pg-restore
  postgresql:
    parameters:
      max_connections: '200'
    synchronous:
      method: any
      number: 1
",
        );
    }

    #[test]
    fn cluster_external_cluster_plugin_needs_a_name() {
        let yaml = format!(
            "{CLUSTER}  externalClusters:\n  - name: origin\n    plugin:\n      parameters:\n        barmanObjectName: store\n"
        );
        assert_eq!(
            check(&yaml),
            [err(
                "spec.externalClusters[0].plugin.name",
                "Required value"
            )]
        );
    }

    #[test]
    fn cluster_cel_rules() {
        assert_eq!(
            check(&format!(
                "{CLUSTER}  imageName: postgres:17\n  imageCatalogRef:\n    apiGroup: postgresql.cnpg.io\n    kind: ClusterImageCatalog\n    name: pg\n    major: 17\n"
            )),
            [err(
                "spec",
                "Invalid value: \"object\": imageName and imageCatalogRef are mutually exclusive"
            )]
        );
        assert_eq!(
            check(&format!(
                "{CLUSTER}  imageCatalogRef:\n    apiGroup: postgresql.cnpg.io\n    kind: ConfigMap\n    name: pg\n    major: 17\n"
            )),
            [err(
                "spec.imageCatalogRef",
                "Invalid value: \"object\": Only image catalogs are supported"
            )]
        );
        assert_eq!(
            check(&format!(
                "{CLUSTER}  postgresql:\n    synchronous:\n      method: any\n      number: 0\n"
            )),
            [err(
                "spec.postgresql.synchronous.number",
                "Invalid value: \"integer\": The number of synchronous replicas should be greater than zero"
            )]
        );
        assert_eq!(
            check(&format!(
                "{CLUSTER}  bootstrap:\n    initdb:\n      localeProvider: icu\n      builtinLocale: C.UTF-8\n      icuLocale: en-US\n"
            )),
            [err(
                "spec.bootstrap.initdb",
                "Invalid value: \"object\": builtinLocale is only available when localeProvider is set to `builtin`"
            )]
        );
        // serviceAccountName is immutable: a transition rule, not checked here.
        valid(&format!("{CLUSTER}  serviceAccountName: pg\n"));
    }

    #[test]
    fn scheduled_backup() {
        let yaml = "\
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata:
  name: pg-main-daily
  namespace: db
spec:
  schedule: '0 0 3 * * *'
  backupOwnerReference: self
  cluster:
    name: pg-main
  method: plugin
  pluginConfiguration:
    name: barman-cloud.cloudnative-pg.io
";
        valid(yaml);
        assert_eq!(
            check(&yaml.replace("method: plugin", "method: barman")),
            [err(
                "spec.method",
                "Unsupported value: \"barman\": supported values: \"barmanObjectStore\", \"volumeSnapshot\", \"plugin\""
            )]
        );
        assert_eq!(
            check(&yaml.replace("  schedule: '0 0 3 * * *'\n", "")),
            [err("spec.schedule", "Required value")]
        );
    }

    #[test]
    fn backup() {
        valid(
            "apiVersion: postgresql.cnpg.io/v1\nkind: Backup\nmetadata:\n  name: before-upgrade\nspec:\n  cluster:\n    name: pg-main\n  method: volumeSnapshot\n",
        );
    }

    #[test]
    fn database() {
        let yaml = "\
apiVersion: postgresql.cnpg.io/v1
kind: Database
metadata:
  name: pg-main-app
  namespace: db
spec:
  name: app
  owner: app
  cluster:
    name: pg-main
  ensure: present
  extensions:
  - name: pg_stat_statements
";
        valid(yaml);
        assert_eq!(
            check(&yaml.replace("name: app\n", "name: template1\n")),
            [err(
                "spec.name",
                "Invalid value: \"string\": the name template1 is reserved"
            )]
        );
        assert_eq!(
            check(&yaml.replace("ensure: present", "ensure: gone")),
            [err(
                "spec.ensure",
                "Unsupported value: \"gone\": supported values: \"present\", \"absent\""
            )]
        );
        assert_eq!(
            check(&format!("{yaml}  icuLocale: en-US\n")),
            [err(
                "spec",
                "Invalid value: \"object\": no such key: localeProvider evaluating rule: !has(self.icuLocale) || self.localeProvider == 'icu'"
            )]
        );
    }

    const OBJECT_STORE: &str = "\
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata:
  name: store
  namespace: db
spec:
  retentionPolicy: 30d
  configuration:
    destinationPath: s3://cnpg-backups/
    endpointURL: https://s3.example.com
    s3Credentials:
      accessKeyId:
        name: s3
        key: ACCESS_KEY_ID
      secretAccessKey:
        name: s3
        key: ACCESS_SECRET_KEY
    wal:
      compression: gzip
    data:
      compression: gzip
";

    #[test]
    fn object_store() {
        valid(OBJECT_STORE);
        assert_eq!(
            check(&OBJECT_STORE.replace("    wal:\n", "    serverName: pg-main\n    wal:\n")),
            [err(
                "spec.configuration.serverName",
                "Forbidden: use the 'serverName' plugin parameter in the Cluster resource"
            )]
        );
        assert_eq!(
            check(&format!(
                "{OBJECT_STORE}  instanceSidecarConfiguration:\n    additionalContainerArgs:\n    - --log-level=debug\n"
            )),
            [err(
                "spec.instanceSidecarConfiguration.additionalContainerArgs",
                "Forbidden: do not set --log-level in additionalContainerArgs; use spec.instanceSidecarConfiguration.logLevel"
            )]
        );
        assert_eq!(
            check(&OBJECT_STORE.replace("retentionPolicy: 30d", "retentionPolicy: '30'")),
            [err(
                "spec.retentionPolicy",
                "Invalid value: \"30\": should match '^[1-9][0-9]*[dwm]$'"
            )]
        );
    }

    const FLUX: &str = "\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: databases
  namespace: flux-system
spec:
  interval: 10m
  path: ./databases/prod
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
";

    #[test]
    fn flux_kustomization() {
        valid(FLUX);
        let without_source = FLUX.replace(
            "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
            "",
        );
        assert_eq!(
            check(&without_source),
            [err("spec.sourceRef", "Required value")]
        );
        assert_eq!(
            check(&FLUX.replace("interval: 10m", "interval: 10 minutes")),
            [err(
                "spec.interval",
                "Invalid value: \"10 minutes\": should match '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$'"
            )]
        );
        assert_eq!(
            check(&format!(
                "{FLUX}  kubeConfig:\n    secretRef:\n      name: a\n    configMapRef:\n      name: b\n"
            )),
            [err(
                "spec.kubeConfig",
                "Invalid value: \"object\": exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"
            )]
        );
    }
}
