//! infra/stack.json is the one declaration of resources, functions, routes and environment: the
//! local stack creates from it and the CDK app reads it. These checks keep the rest in step.

use std::collections::BTreeSet;

use e2e::workspace_root;
use serde_json::Value;
use shared::adapters::attestation::AttestationConfig;
use shared::config::{
    AcceptEventLogsConfig, AcceptLogsConfig, EnforceRetentionConfig, IssueLogIdConfig,
    PublishExportsConfig, SubmitKeysConfig, VerifierConfig,
};

/// The attestation switches the deployment sets for `submit-keys` (the rest of
/// `AttestationConfig::VARIABLES` are secrets an operator adds when switching iOS on).
const SUBMIT_KEYS_ATTESTATION: &[&str] = &[
    "ANDROID_ATTESTATION_ENABLED",
    "IOS_ATTESTATION_ENABLED",
    "DEVICECHECK_URL",
];

#[test]
fn the_declared_attestation_switches_are_ones_the_configuration_reads() {
    assert!(
        SUBMIT_KEYS_ATTESTATION
            .iter()
            .all(|v| AttestationConfig::VARIABLES.contains(v))
    );
}

fn declaration() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("infra/stack.json"))
        .expect("infra/stack.json");
    serde_json::from_str(&text).expect("infra/stack.json is JSON")
}

fn functions() -> Vec<Value> {
    declaration()["functions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_watch_router_serves_exactly_the_declared_routes() {
    let manifest: toml::Table = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
        .expect("Cargo.toml")
        .parse()
        .expect("Cargo.toml is TOML");
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("router table");
    let mut served = BTreeSet::new();
    for (path, targets) in router {
        for target in targets.as_array().expect("method-specific routes") {
            let method = target["method"].as_str().expect("method");
            let function = target["function"].as_str().expect("function");
            served.insert(format!("{method} {path} -> {function}"));
        }
    }
    let mut declared = BTreeSet::new();
    for function in functions() {
        let name = function["name"].as_str().expect("name");
        for route in function["routes"].as_array().expect("routes") {
            declared.insert(format!("{} -> {name}", route.as_str().expect("route")));
        }
    }
    assert_eq!(served, declared);
}

#[test]
fn every_declared_function_is_a_crate_and_every_function_crate_is_declared() {
    let declared: BTreeSet<String> = functions()
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect();
    let crates: BTreeSet<String> = std::fs::read_dir(workspace_root().join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(declared, crates);
}

#[test]
fn every_function_is_given_exactly_the_variables_its_configuration_reads() {
    let submit_keys: Vec<&str> = SubmitKeysConfig::DECLARED
        .iter()
        .chain(SUBMIT_KEYS_ATTESTATION)
        .copied()
        .collect();
    let event_logs: Vec<&str> = AcceptEventLogsConfig::DECLARED
        .iter()
        .chain(SUBMIT_KEYS_ATTESTATION)
        .copied()
        .collect();
    let configurations: &[(&str, &[&str])] = &[
        ("submit-keys", &submit_keys),
        ("verify-processing-number", VerifierConfig::DECLARED),
        ("register", &[]),
        ("publish-exports", PublishExportsConfig::DECLARED),
        ("issue-log-id", IssueLogIdConfig::DECLARED),
        ("accept-logs", AcceptLogsConfig::DECLARED),
        ("accept-event-logs", &event_logs),
        ("enforce-retention", EnforceRetentionConfig::DECLARED),
    ];
    assert_eq!(
        configurations.len(),
        functions().len(),
        "every function's configuration is listed here"
    );
    for (name, read) in configurations {
        let function = functions()
            .into_iter()
            .find(|f| f["name"] == *name)
            .expect("declared");
        let declared: BTreeSet<String> = function["environment"]
            .as_object()
            .expect("environment")
            .keys()
            .cloned()
            .collect();
        let read: BTreeSet<String> = read.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(declared, read, "{name}");
    }
}

#[test]
fn only_the_verifier_holds_hersys_settings() {
    for function in functions() {
        let holds_hersys = function["environment"]
            .as_object()
            .expect("environment")
            .keys()
            .any(|k| k.starts_with("HERSYS_"));
        assert_eq!(
            holds_hersys,
            function["name"] == "verify-processing-number",
            "{}",
            function["name"]
        );
    }
}

#[test]
fn every_placeholder_names_a_declared_resource_or_setting() {
    let declaration = declaration();
    let mut known = BTreeSet::new();
    for (kind, list) in [
        ("table", "tables"),
        ("bucket", "buckets"),
        ("kms", "kmsKeys"),
    ] {
        for resource in declaration[list].as_array().expect("list") {
            known.insert(format!("{kind}:{}", resource["id"].as_str().expect("id")));
        }
    }
    for function in declaration["functions"].as_array().expect("functions") {
        known.insert(format!(
            "function:{}",
            function["name"].as_str().expect("name")
        ));
    }
    for setting in declaration["settings"]["local"]
        .as_object()
        .expect("settings")
        .keys()
    {
        known.insert(format!("setting:{setting}"));
    }
    for function in functions() {
        for value in function["environment"]
            .as_object()
            .expect("environment")
            .values()
        {
            let text = value.as_str().expect("string value");
            let mut rest = text;
            while let Some(start) = rest.find("${") {
                let end = rest[start..].find('}').expect("closed placeholder") + start;
                let name = &rest[start + 2..end];
                assert!(
                    known.contains(name),
                    "unknown placeholder ${{{name}}} in {text}"
                );
                rest = &rest[end + 1..];
            }
        }
    }
}

#[test]
fn the_retention_job_sweeps_every_table() {
    let declaration = declaration();
    let tables: BTreeSet<String> = declaration["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            assert_eq!(t["ttlAttribute"], "expires_at", "{}", t["id"]);
            format!("${{table:{}}}", t["id"].as_str().expect("id"))
        })
        .collect();
    let retention = functions()
        .into_iter()
        .find(|f| f["name"] == "enforce-retention")
        .expect("declared");
    let swept: BTreeSet<String> = retention["environment"]["RETENTION_TABLES"]
        .as_str()
        .expect("RETENTION_TABLES")
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(swept, tables);
    assert!(retention["schedule"].as_str().is_some());
}

#[test]
fn the_log_container_route_is_the_configured_container() {
    let accept_logs = functions()
        .into_iter()
        .find(|f| f["name"] == "accept-logs")
        .expect("declared");
    let container = accept_logs["environment"]["LOG_CONTAINER"]
        .as_str()
        .expect("LOG_CONTAINER");
    let routes: Vec<&str> = accept_logs["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        routes.contains(&format!("PUT /{container}/{{blob}}").as_str()),
        "{routes:?}"
    );
}

#[test]
fn operator_secrets_are_variables_their_functions_read() {
    let declaration = declaration();
    let optional: &[(&str, &[&str])] = &[
        ("verify-processing-number", VerifierConfig::OPTIONAL),
        ("submit-keys", AttestationConfig::VARIABLES),
        ("accept-event-logs", AttestationConfig::VARIABLES),
    ];
    let secrets = declaration["operatorSecrets"]
        .as_array()
        .expect("operatorSecrets");
    assert!(!secrets.is_empty());
    for secret in secrets {
        let variable = secret["variable"].as_str().expect("variable");
        for function in secret["functions"].as_array().expect("functions") {
            let function = function.as_str().expect("name");
            let read = optional
                .iter()
                .find(|(name, _)| *name == function)
                .map(|(_, read)| *read)
                .unwrap_or_else(|| panic!("{variable}: {function} reads no optional secrets"));
            assert!(
                read.contains(&variable),
                "{function} does not read {variable}"
            );
        }
    }
    // Every deployment setting a function uses is described for the operator.
    let described: BTreeSet<String> = declaration["settings"]["deployment"]
        .as_object()
        .expect("deployment settings")
        .keys()
        .cloned()
        .collect();
    let local: BTreeSet<String> = declaration["settings"]["local"]
        .as_object()
        .expect("local settings")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        described, local,
        "every setting has a local value and a deployment description"
    );
}
