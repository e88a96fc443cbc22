//! Checks a Pulumi YAML program against the schema: resource types, every property (through
//! object types, arrays and maps), value types, required inputs, and that every `${…}` names
//! config, a variable, a resource or a real output of that resource's type.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::{Mapping, Value};

use super::expr::{self, Reference};
mod invoke;

use super::{Finding, PropSpec, ResourceSchema, Schema, suggest};

const TOP_LEVEL_KEYS: [&str; 15] = [
    "name",
    "runtime",
    "description",
    "config",
    "variables",
    "resources",
    "outputs",
    "pulumi",
    "packages",
    "plugins",
    "main",
    "stackConfigDir",
    "options",
    "template",
    "backend",
];
const RESOURCE_KEYS: [&str; 6] = [
    "type",
    "properties",
    "options",
    "get",
    "name",
    "defaultProvider",
];
const OPTION_KEYS: [&str; 20] = [
    "additionalSecretOutputs",
    "aliases",
    "customTimeouts",
    "deleteBeforeReplace",
    "dependsOn",
    "ignoreChanges",
    "import",
    "parent",
    "protect",
    "provider",
    "providers",
    "version",
    "pluginDownloadURL",
    "replaceOnChanges",
    "retainOnDelete",
    "deletedWith",
    "replaceWith",
    "hideDiffs",
    "replacementTrigger",
    "envVarMappings",
];
const CONFIG_TYPES: [&str; 5] = ["string", "integer", "boolean", "array", "object"];
const CONFIG_DECLARATION_KEYS: [&str; 5] = ["type", "default", "secret", "description", "items"];
const PULUMI_BUILTINS: [&str; 5] = ["stack", "project", "organization", "cwd", "rootDirectory"];
/// The built-in functions this checker understands; the renderer uses no others.
const FUNCTIONS: [&str; 7] = [
    "fn::invoke",
    "fn::toJSON",
    "fn::fileArchive",
    "fn::fileAsset",
    "fn::secret",
    "fn::join",
    "fn::readFile",
];

/// What a value or reference evaluates to, as far as type checking goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
    Archive,
    Asset,
    /// A bare `${resource}`: accepted where a string (ARN, name) is expected.
    Resource,
    Any,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::Array => "array",
            Kind::Object => "object",
            Kind::Archive => "archive",
            Kind::Asset => "asset",
            Kind::Resource => "resource",
            Kind::Any => "any value",
        }
    }

    fn of_type_name(name: &str) -> Kind {
        match name {
            "string" => Kind::String,
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "array" => Kind::Array,
            "object" => Kind::Object,
            _ => Kind::Any,
        }
    }

    fn of_literal(value: &Value) -> Kind {
        match value {
            Value::String(_) => Kind::String,
            Value::Bool(_) => Kind::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Integer,
            Value::Number(_) => Kind::Number,
            Value::Sequence(_) => Kind::Array,
            Value::Mapping(_) => Kind::Object,
            Value::Null | Value::Tagged(_) => Kind::Any,
        }
    }

    /// Pulumi YAML's coercions: numbers, booleans and resources become strings; integers are
    /// numbers. A string never becomes a number.
    fn fits(self, expected: Kind) -> bool {
        self == expected
            || self == Kind::Any
            || expected == Kind::Any
            || (self == Kind::Integer && expected == Kind::Number)
            || (expected == Kind::String
                && matches!(
                    self,
                    Kind::Integer | Kind::Number | Kind::Boolean | Kind::Resource
                ))
    }
}

/// Names a `${…}` may start with.
struct Scope<'s> {
    config: BTreeMap<String, Kind>,
    variables: BTreeSet<String>,
    resources: BTreeMap<String, (&'s str, &'s ResourceSchema)>,
}

struct Checker<'s> {
    schema: &'s Schema,
    scope: Scope<'s>,
    findings: Vec<Finding>,
}

/// Every problem of `program` (a parsed Pulumi YAML document), each with its path.
pub fn check_program(schema: &Schema, program: &Value) -> Vec<Finding> {
    let mut checker = Checker {
        schema,
        scope: Scope {
            config: BTreeMap::new(),
            variables: BTreeSet::new(),
            resources: BTreeMap::new(),
        },
        findings: Vec::new(),
    };
    let Some(top) = program.as_mapping() else {
        checker.add(
            "",
            "a program is a mapping with name, runtime and resources",
        );
        return checker.findings;
    };
    checker.top_level(top);
    checker.findings
}

impl<'s> Checker<'s> {
    fn add(&mut self, path: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            path: if path.is_empty() {
                "(program)".to_string()
            } else {
                path.to_string()
            },
            message: message.into(),
        });
    }

    fn top_level(&mut self, top: &Mapping) {
        for key in top.keys() {
            match key.as_str() {
                Some(k) if TOP_LEVEL_KEYS.contains(&k) => {}
                Some(k) => self.add(
                    k,
                    format!("unknown top-level key; {}", suggest(k, TOP_LEVEL_KEYS)),
                ),
                None => self.add("", "top-level keys must be strings"),
            }
        }
        match top.get("name") {
            Some(Value::String(name)) if is_project_name(name) => {}
            Some(other) => self.add(
                "name",
                format!(
                    "{} is not a project name; allowed letters, digits, '-', '_' and '.'",
                    show(other)
                ),
            ),
            None => self.add("name", "missing; a program needs a project name"),
        }
        match top.get("runtime") {
            Some(Value::String(r)) if r == "yaml" => {}
            Some(Value::Mapping(r)) if r.get("name").and_then(Value::as_str) == Some("yaml") => {}
            Some(other) => self.add(
                "runtime",
                format!(
                    "{} is not the YAML runtime; allowed yaml or {{name: yaml, options: …}}",
                    show(other)
                ),
            ),
            None => self.add("runtime", "missing; allowed yaml"),
        }

        self.declare(top);
        if let Some(resources) = top.get("resources").and_then(Value::as_mapping) {
            for (name, resource) in resources {
                if let Some(name) = name.as_str() {
                    self.resource(name, resource);
                }
            }
        }
        if let Some(variables) = top.get("variables").and_then(Value::as_mapping) {
            for (name, value) in variables {
                let path = format!("variables.{}", name.as_str().unwrap_or("?"));
                self.walk(value, &path);
            }
        }
        match top.get("outputs") {
            None => {}
            Some(Value::Mapping(outputs)) => {
                for (name, value) in outputs {
                    let path = format!("outputs.{}", name.as_str().unwrap_or("?"));
                    self.walk(value, &path);
                }
            }
            Some(other) => self.add(
                "outputs",
                format!("{} is not a mapping of output names to values", show(other)),
            ),
        }
    }

    /// Collects config, variables and resources into the one namespace they share.
    fn declare(&mut self, top: &Mapping) {
        let mut seen: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut claim = |checker: &mut Self, name: &str, section: &'static str| {
            if let Some(first) = seen.insert(name.to_string(), section) {
                checker.add(
                    &format!("{section}.{name}"),
                    format!("`{name}` is already declared in {first}; config, variables and resources share one namespace"),
                );
            }
        };

        if let Some(config) = top.get("config") {
            let Some(config) = config.as_mapping() else {
                self.add("config", "is not a mapping of config keys");
                return;
            };
            for (key, declaration) in config {
                let Some(key) = key.as_str() else { continue };
                let path = format!("config.{key}");
                if key.contains(':') {
                    // Namespaced provider config (`aws:region`): set here, read by the provider.
                    continue;
                }
                claim(self, key, "config");
                let kind = self.config_declaration(&path, declaration);
                self.scope.config.insert(key.to_string(), kind);
            }
        }
        if let Some(variables) = top.get("variables").and_then(Value::as_mapping) {
            for name in variables.keys().filter_map(Value::as_str) {
                claim(self, name, "variables");
                self.scope.variables.insert(name.to_string());
            }
        }
        match top.get("resources") {
            None => {}
            Some(Value::Mapping(resources)) => {
                for (name, resource) in resources {
                    let Some(name) = name.as_str() else {
                        self.add("resources", "resource names must be strings");
                        continue;
                    };
                    claim(self, name, "resources");
                    let token = resource
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if let Some(found) = self.schema.resource(token) {
                        self.scope.resources.insert(name.to_string(), found);
                    }
                }
            }
            Some(other) => self.add(
                "resources",
                format!(
                    "{} is not a mapping of logical names to resources",
                    show(other)
                ),
            ),
        }
    }

    fn config_declaration(&mut self, path: &str, declaration: &Value) -> Kind {
        let Some(fields) = declaration.as_mapping() else {
            // `key: 3` is shorthand for `key: {default: 3}`.
            return Kind::of_literal(declaration);
        };
        for key in fields.keys() {
            let key = key.as_str().unwrap_or("?");
            if !CONFIG_DECLARATION_KEYS.contains(&key) {
                self.add(
                    &format!("{path}.{key}"),
                    format!(
                        "unknown config field; {}",
                        suggest(key, CONFIG_DECLARATION_KEYS)
                    ),
                );
            }
        }
        match (fields.get("type"), fields.get("default")) {
            (Some(Value::String(ty)), _) if CONFIG_TYPES.contains(&ty.as_str()) => {
                if ty == "array" && fields.get("items").is_none() {
                    self.add(
                        &format!("{path}.items"),
                        "missing; an array config needs items",
                    );
                }
                Kind::of_type_name(ty)
            }
            (Some(other), _) => {
                self.add(
                    &format!("{path}.type"),
                    format!(
                        "{} is not a config type; allowed {}",
                        show(other),
                        CONFIG_TYPES.join(", ")
                    ),
                );
                Kind::Any
            }
            (None, Some(default)) => Kind::of_literal(default),
            (None, None) => {
                self.add(path, "needs a type or a default");
                Kind::Any
            }
        }
    }

    fn resource(&mut self, name: &str, resource: &Value) {
        let path = format!("resources.{name}");
        let Some(fields) = resource.as_mapping() else {
            self.add(&path, "a resource is a mapping with type and properties");
            return;
        };
        for key in fields.keys() {
            let key = key.as_str().unwrap_or("?");
            if !RESOURCE_KEYS.contains(&key) {
                self.add(
                    &format!("{path}.{key}"),
                    format!("unknown resource field; {}", suggest(key, RESOURCE_KEYS)),
                );
            }
        }
        let Some(token) = fields.get("type").and_then(Value::as_str) else {
            self.add(
                &format!("{path}.type"),
                "missing; every resource needs a type token",
            );
            return;
        };
        let Some((full, schema)) = self.schema.resource(token) else {
            self.add(
                &format!("{path}.type"),
                format!("unknown resource type `{token}` (not in the AWS provider schema)"),
            );
            return;
        };
        if let Some(options) = fields.get("options") {
            self.options(&format!("{path}.options"), options);
        }
        let properties_path = format!("{path}.properties");
        let empty = Mapping::new();
        let properties = match fields.get("properties") {
            Some(Value::Mapping(p)) => p,
            None => &empty,
            Some(other) => {
                self.add(
                    &properties_path,
                    format!("{} is not a mapping of properties", show(other)),
                );
                return;
            }
        };
        for (key, value) in properties {
            let Some(key) = key.as_str() else {
                self.add(&properties_path, "property names must be strings");
                continue;
            };
            let property_path = format!("{properties_path}.{key}");
            match schema.input_properties.get(key) {
                Some(spec) => self.value(value, spec, &property_path),
                None => self.add(
                    &property_path,
                    format!(
                        "unknown property of {full}; {}",
                        suggest(key, schema.input_properties.keys().map(String::as_str))
                    ),
                ),
            }
        }
        if fields.get("get").is_none() {
            for required in &schema.required_inputs {
                if !properties.contains_key(required.as_str()) {
                    self.add(
                        &properties_path,
                        format!("missing required input `{required}` of {full}"),
                    );
                }
            }
        }
    }

    fn options(&mut self, path: &str, options: &Value) {
        let Some(options) = options.as_mapping() else {
            self.add(path, "resource options are a mapping");
            return;
        };
        for (key, value) in options {
            let key = key.as_str().unwrap_or("?");
            let option_path = format!("{path}.{key}");
            if !OPTION_KEYS.contains(&key) {
                self.add(
                    &option_path,
                    format!("unknown resource option; {}", suggest(key, OPTION_KEYS)),
                );
                continue;
            }
            match key {
                "dependsOn" => match value {
                    Value::Sequence(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.resource_reference(item, &format!("{option_path}[{i}]"));
                        }
                    }
                    other => self.resource_reference(other, &option_path),
                },
                "provider" | "parent" | "deletedWith" => {
                    self.resource_reference(value, &option_path)
                }
                "version" => {
                    if !matches!(value, Value::String(v) if is_version(v)) {
                        self.add(
                            &option_path,
                            format!("{} is not a version; allowed e.g. \"7.48.0\"", show(value)),
                        );
                    }
                }
                "protect" | "retainOnDelete" | "deleteBeforeReplace" => {
                    if !value.is_bool()
                        && self.substitution_kind(value, &option_path) != Some(Kind::Boolean)
                    {
                        self.add(&option_path, format!("{} is not a boolean", show(value)));
                    }
                }
                _ => self.walk(value, &option_path),
            }
        }
    }

    /// A `${resource}` reference, as `dependsOn`, `provider` and `parent` take.
    fn resource_reference(&mut self, value: &Value, path: &str) {
        let reference = value.as_str().and_then(expr::substitution);
        match reference {
            Some(r) if r.accessors.is_empty() && self.scope.resources.contains_key(&r.root) => {}
            _ => self.add(
                path,
                format!(
                    "{} is not a reference to a resource of this program such as ${{name}}",
                    show(value)
                ),
            ),
        }
    }

    /// Checks `value` against `spec` and reports what does not fit.
    fn value(&mut self, value: &Value, spec: &PropSpec, path: &str) {
        if let Some(message) = &spec.deprecation {
            self.add(path, format!("deprecated: {message}"));
        }
        if value.is_null() {
            self.add(path, "is null; leave the property out instead");
            return;
        }
        if let Some(kind) = self.expression_kind(value, path) {
            let expected = self.spec_kind(spec);
            if !kind.fits(expected) {
                self.add(
                    path,
                    format!(
                        "expected {}, found {}",
                        expected.name(),
                        describe(value, kind)
                    ),
                );
            }
            return;
        }

        if !spec.one_of.is_empty() {
            self.one_of(value, spec, path);
            return;
        }
        if let Some(reference) = &spec.reference {
            self.referenced_type(value, spec, reference, path);
            return;
        }
        let Some(ty) = spec.ty.as_deref() else {
            self.walk(value, path);
            return;
        };
        match (ty, value) {
            ("string", Value::String(_)) | ("boolean", Value::Bool(_)) => {}
            ("integer", Value::Number(n)) if n.is_i64() || n.is_u64() => {}
            ("number", Value::Number(_)) => {}
            ("array", Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match &spec.items {
                        Some(items_spec) => self.value(item, items_spec, &item_path),
                        None => self.walk(item, &item_path),
                    }
                }
            }
            ("object", Value::Mapping(entries)) => {
                for (key, item) in entries {
                    let Some(key) = key.as_str() else {
                        self.add(path, "map keys must be strings");
                        continue;
                    };
                    let item_path = format!("{path}.{key}");
                    match &spec.additional_properties {
                        Some(item_spec) => self.value(item, item_spec, &item_path),
                        None => self.walk(item, &item_path),
                    }
                }
            }
            (expected, found) => {
                let kind = Kind::of_literal(found);
                self.add(
                    path,
                    format!("expected {expected}, found {}", describe(found, kind)),
                );
            }
        }
    }

    /// `oneOf` next to `type` is a union whose wire type is `type`; without `type` any
    /// alternative may match.
    fn one_of(&mut self, value: &Value, spec: &PropSpec, path: &str) {
        let wire = spec.ty.as_ref().map(|ty| PropSpec {
            ty: Some(ty.clone()),
            items: spec.items.clone(),
            additional_properties: spec.additional_properties.clone(),
            ..PropSpec::default()
        });
        let mut first_attempt: Option<Vec<Finding>> = None;
        for alternative in wire.iter().chain(spec.one_of.iter()) {
            let findings = self.trial(value, alternative, path);
            if findings.is_empty() {
                return;
            }
            first_attempt.get_or_insert(findings);
        }
        if let Some(findings) = first_attempt {
            self.findings.extend(findings);
        }
    }

    /// Runs a check without keeping its findings.
    fn trial(&mut self, value: &Value, spec: &PropSpec, path: &str) -> Vec<Finding> {
        let kept = std::mem::take(&mut self.findings);
        self.value(value, spec, path);
        std::mem::replace(&mut self.findings, kept)
    }

    fn referenced_type(&mut self, value: &Value, spec: &PropSpec, reference: &str, path: &str) {
        match reference {
            "pulumi.json#/Archive" | "pulumi.json#/Asset" => {
                let wanted = if reference.ends_with("Archive") {
                    "an archive such as {fn::fileArchive: path}"
                } else {
                    "an asset such as {fn::fileAsset: path}"
                };
                self.add(
                    path,
                    format!(
                        "expected {wanted}, found {}",
                        describe(value, Kind::of_literal(value))
                    ),
                );
            }
            "pulumi.json#/Any" => self.walk(value, path),
            _ if spec.resource_reference => {
                if !value.is_string() {
                    self.add(
                        path,
                        format!(
                            "expected a string (ARN or name), found {}",
                            describe(value, Kind::of_literal(value))
                        ),
                    );
                }
            }
            _ => {
                let Some(object) = self.schema.object_type(reference) else {
                    self.add(path, format!("the schema has no type {reference}"));
                    return;
                };
                if object.ty.as_deref() != Some("object") {
                    // An enum: the wire value is a string, and any string is accepted.
                    if !value.is_string() {
                        self.add(
                            path,
                            format!(
                                "expected string, found {}",
                                describe(value, Kind::of_literal(value))
                            ),
                        );
                    }
                    return;
                }
                let Some(entries) = value.as_mapping() else {
                    self.add(
                        path,
                        format!(
                            "expected an object ({}), found {}",
                            type_name(reference),
                            describe(value, Kind::of_literal(value))
                        ),
                    );
                    return;
                };
                for (key, item) in entries {
                    let Some(key) = key.as_str() else {
                        self.add(path, "property names must be strings");
                        continue;
                    };
                    let item_path = format!("{path}.{key}");
                    match object.properties.get(key) {
                        Some(item_spec) => self.value(item, item_spec, &item_path),
                        None => self.add(
                            &item_path,
                            format!(
                                "unknown property; {}",
                                suggest(key, object.properties.keys().map(String::as_str))
                            ),
                        ),
                    }
                }
                for required in &object.required {
                    if !entries.contains_key(required.as_str()) {
                        self.add(
                            path,
                            format!(
                                "missing required property `{required}` of {}",
                                type_name(reference)
                            ),
                        );
                    }
                }
            }
        }
    }

    /// The kind of `value` when it is an expression (`fn::…` or a string with `${…}`), after
    /// checking the expression itself; `None` for plain data.
    fn expression_kind(&mut self, value: &Value, path: &str) -> Option<Kind> {
        match value {
            Value::String(text) if text.contains('$') => Some(self.string_kind(text, path)),
            Value::Mapping(entries) if entries.len() == 1 => {
                let (key, argument) = entries.iter().next()?;
                let name = key.as_str()?;
                name.to_ascii_lowercase()
                    .starts_with("fn::")
                    .then(|| self.function(name, argument, path))
            }
            _ => None,
        }
    }

    fn substitution_kind(&mut self, value: &Value, path: &str) -> Option<Kind> {
        let reference = expr::substitution(value.as_str()?)?;
        Some(self.resolve(&reference, path))
    }

    fn string_kind(&mut self, text: &str, path: &str) -> Kind {
        let pieces = match expr::parse(text) {
            Ok(pieces) => pieces,
            Err(message) => {
                self.add(path, message);
                return Kind::Any;
            }
        };
        if let [expr::Piece::Ref(reference)] = pieces.as_slice() {
            return self.resolve(reference, path);
        }
        for piece in &pieces {
            if let expr::Piece::Ref(reference) = piece {
                let kind = self.resolve(reference, path);
                if matches!(kind, Kind::Array | Kind::Object) {
                    self.add(
                        path,
                        format!(
                            "{reference} is {} and cannot be interpolated into a string",
                            describe_kind(kind)
                        ),
                    );
                }
            }
        }
        Kind::String
    }

    fn function(&mut self, name: &str, argument: &Value, path: &str) -> Kind {
        let function_path = format!("{path}.{name}");
        if !FUNCTIONS.contains(&name) {
            self.add(
                &function_path,
                format!(
                    "unknown or unsupported function; {}",
                    suggest(name, FUNCTIONS)
                ),
            );
            return Kind::Any;
        }
        match name {
            "fn::invoke" => self.invoke(argument, &function_path),
            "fn::toJSON" => {
                self.walk(argument, &function_path);
                Kind::String
            }
            "fn::fileArchive" | "fn::fileAsset" | "fn::readFile" => {
                match argument {
                    Value::String(file) if !file.is_empty() && !file.contains("..") => {}
                    other => self.add(
                        &function_path,
                        format!("{} is not a path inside the project", show(other)),
                    ),
                }
                match name {
                    "fn::fileArchive" => Kind::Archive,
                    "fn::fileAsset" => Kind::Asset,
                    _ => Kind::String,
                }
            }
            "fn::join" => {
                match argument.as_sequence().map(Vec::as_slice) {
                    Some([Value::String(_), Value::Sequence(items)]) => {
                        for (i, item) in items.iter().enumerate() {
                            self.walk(item, &format!("{function_path}[1][{i}]"));
                        }
                    }
                    _ => self.add(&function_path, "expected [separator, [values…]]"),
                }
                Kind::String
            }
            // fn::secret keeps the type of what it wraps.
            _ => self
                .expression_kind(argument, &function_path)
                .unwrap_or_else(|| Kind::of_literal(argument)),
        }
    }

    /// Where no schema type applies (outputs, `fn::toJSON` bodies, `Any`): still resolve every
    /// reference and check every function.
    fn walk(&mut self, value: &Value, path: &str) {
        if self.expression_kind(value, path).is_some() {
            return;
        }
        match value {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, &format!("{path}[{i}]"));
                }
            }
            Value::Mapping(entries) => {
                for (key, item) in entries {
                    self.walk(item, &format!("{path}.{}", key.as_str().unwrap_or("?")));
                }
            }
            _ => {}
        }
    }

    fn resolve(&mut self, reference: &Reference, path: &str) -> Kind {
        let root = reference.root.as_str();
        if root == "pulumi" {
            return match reference.property() {
                Some(p) if PULUMI_BUILTINS.contains(&p) && reference.accessors.len() == 1 => {
                    Kind::String
                }
                _ => {
                    self.add(
                        path,
                        format!(
                            "{reference}: unknown built-in; {}",
                            suggest(reference.property().unwrap_or(""), PULUMI_BUILTINS)
                        ),
                    );
                    Kind::Any
                }
            };
        }
        if let Some(kind) = self.scope.config.get(root).copied() {
            if reference.accessors.is_empty() {
                return kind;
            }
            if !matches!(kind, Kind::Object | Kind::Array | Kind::Any) {
                self.add(
                    path,
                    format!(
                        "{reference}: config `{root}` is {} and has no fields",
                        describe_kind(kind)
                    ),
                );
            }
            return Kind::Any;
        }
        if self.scope.variables.contains(root) {
            return Kind::Any;
        }
        if let Some((token, schema)) = self.scope.resources.get(root).copied() {
            let Some(output) = reference.property() else {
                if reference.accessors.is_empty() {
                    return Kind::Resource;
                }
                self.add(
                    path,
                    format!("{reference}: index a resource through one of its outputs"),
                );
                return Kind::Any;
            };
            if output == "id" || output == "urn" {
                return Kind::String;
            }
            let Some(spec) = schema.properties.get(output) else {
                self.add(
                    path,
                    format!(
                        "{reference}: {token} has no output `{output}`; {}",
                        suggest(
                            output,
                            schema
                                .properties
                                .keys()
                                .map(String::as_str)
                                .chain(["id", "urn"])
                        )
                    ),
                );
                return Kind::Any;
            };
            return if reference.accessors.len() == 1 {
                self.spec_kind(spec)
            } else {
                Kind::Any
            };
        }
        let mut names: Vec<&str> = self.scope.config.keys().map(String::as_str).collect();
        names.extend(self.scope.variables.iter().map(String::as_str));
        names.extend(self.scope.resources.keys().map(String::as_str));
        names.push("pulumi");
        self.add(
            path,
            format!("{reference}: `{root}` is not a config key, variable, resource or built-in of this program; {}", suggest(root, names)),
        );
        Kind::Any
    }

    fn spec_kind(&self, spec: &PropSpec) -> Kind {
        if spec.resource_reference {
            return Kind::String;
        }
        if let Some(ty) = &spec.ty {
            return Kind::of_type_name(ty);
        }
        match spec.reference.as_deref() {
            Some("pulumi.json#/Archive") => Kind::Archive,
            Some("pulumi.json#/Asset") => Kind::Asset,
            Some(reference) => match self.schema.object_type(reference) {
                Some(object) if object.ty.as_deref() == Some("object") => Kind::Object,
                Some(_) => Kind::String,
                None => Kind::Any,
            },
            None => Kind::Any,
        }
    }
}

fn describe(value: &Value, kind: Kind) -> String {
    match value {
        Value::String(text) if text.contains("${") => format!("{text} ({})", describe_kind(kind)),
        Value::Mapping(entries) if entries.len() == 1 => {
            match entries.keys().next().and_then(Value::as_str) {
                Some(name) if name.starts_with("fn::") => {
                    format!("{name} ({})", describe_kind(kind))
                }
                _ => format!("{} {}", kind.name(), show(value)),
            }
        }
        _ => format!("{} {}", kind.name(), show(value)),
    }
}

fn describe_kind(kind: Kind) -> String {
    match kind {
        Kind::Any => "of unknown type".to_string(),
        Kind::Integer | Kind::Archive | Kind::Asset | Kind::Object | Kind::Array => {
            format!("an {}", kind.name())
        }
        _ => format!("a {}", kind.name()),
    }
}

/// A short rendering of a value for messages.
fn show(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().replace('\n', " "))
            .unwrap_or_else(|_| "?".to_string()),
    };
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text
    }
}

fn type_name(reference: &str) -> &str {
    reference.rsplit(':').next().unwrap_or(reference)
}

fn is_project_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn is_version(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}
