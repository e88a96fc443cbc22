//! `fn::invoke`: a call of a provider function (a data source), checked like a resource.

use serde_yaml::{Mapping, Value};

use super::{Checker, Kind, show};
use crate::schema::{FunctionSchema, suggest};

const INVOKE_KEYS: [&str; 4] = ["function", "arguments", "options", "return"];

impl Checker<'_> {
    /// `fn::invoke: {function, arguments, options, return}`: a function of the schema, its inputs,
    /// and an output it has; the value is that output, or the whole result without `return`.
    pub(super) fn invoke(&mut self, argument: &Value, path: &str) -> Kind {
        let Some(fields) = argument.as_mapping() else {
            self.add(
                path,
                "expected {function: <token>, arguments: {…}, return: <output>}",
            );
            return Kind::Any;
        };
        for key in fields.keys() {
            let key = key.as_str().unwrap_or("?");
            if !INVOKE_KEYS.contains(&key) {
                self.add(
                    &format!("{path}.{key}"),
                    format!("unknown fn::invoke field; {}", suggest(key, INVOKE_KEYS)),
                );
            }
        }
        if let Some(options) = fields.get("options") {
            self.walk(options, &format!("{path}.options"));
        }
        let function_path = format!("{path}.function");
        let Some(token) = fields.get("function").and_then(Value::as_str) else {
            self.add(&function_path, "missing; name the function to call");
            return Kind::Any;
        };
        let Some((full, function)) = self.schema.function(token) else {
            self.add(
                &function_path,
                format!("unknown function `{token}` (not in the AWS provider schema)"),
            );
            return Kind::Any;
        };
        self.invoke_arguments(fields.get("arguments"), full, function, path);
        let Some(output) = fields.get("return") else {
            return Kind::Object;
        };
        let return_path = format!("{path}.return");
        match output
            .as_str()
            .and_then(|name| function.outputs.properties.get(name))
        {
            Some(spec) => self.spec_kind(spec),
            None => {
                self.add(
                    &return_path,
                    format!(
                        "{} is not an output of {full}; {}",
                        show(output),
                        suggest(
                            output.as_str().unwrap_or(""),
                            function.outputs.properties.keys().map(String::as_str)
                        )
                    ),
                );
                Kind::Any
            }
        }
    }

    fn invoke_arguments(
        &mut self,
        arguments: Option<&Value>,
        full: &str,
        function: &FunctionSchema,
        path: &str,
    ) {
        let arguments_path = format!("{path}.arguments");
        let empty = Mapping::new();
        let entries = match arguments {
            None => &empty,
            Some(Value::Mapping(entries)) => entries,
            Some(other) => {
                self.add(
                    &arguments_path,
                    format!("{} is not a mapping of inputs", show(other)),
                );
                return;
            }
        };
        for (key, value) in entries {
            let key = key.as_str().unwrap_or("?");
            let item_path = format!("{arguments_path}.{key}");
            match function.inputs.properties.get(key) {
                Some(spec) => self.value(value, spec, &item_path),
                None => self.add(
                    &item_path,
                    format!(
                        "unknown input of {full}; {}",
                        suggest(key, function.inputs.properties.keys().map(String::as_str))
                    ),
                ),
            }
        }
        for required in &function.inputs.required {
            if !entries.contains_key(required.as_str()) {
                self.add(
                    &arguments_path,
                    format!("missing required input `{required}` of {full}"),
                );
            }
        }
    }
}
