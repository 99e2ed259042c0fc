//! The deployment files at the repository root agree with the code: `app.json` declares every variable
//! the server reads (from `trworker::config::SERVER_VARIABLES`, which the code reads its variables through),
//! the `Procfile` runs `serve` on every interface, the `Dockerfile` runs it unprivileged with a volume and a
//! health check, and the README's configuration reference names every variable.

use std::path::PathBuf;

use trworker::config::SERVER_VARIABLES;

fn root_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn app_json_declares_every_variable_the_server_reads() {
    let app: serde_json::Value = serde_json::from_str(&root_file("app.json")).expect("app.json is JSON");
    assert!(app["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(app["description"].as_str().is_some_and(|d| !d.is_empty()));
    let buildpacks = app["buildpacks"].as_array().expect("buildpacks");
    assert!(
        buildpacks.iter().any(|b| b["url"].as_str().is_some_and(|u| u.contains("rust"))),
        "a Rust buildpack: {buildpacks:?}"
    );
    let env = app["env"].as_object().expect("env");
    for variable in SERVER_VARIABLES {
        let entry =
            env.get(variable.name).unwrap_or_else(|| panic!("app.json does not declare {}", variable.name));
        let description = entry["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{} has no description", variable.name);
        let required = entry["required"].as_bool().unwrap_or(true);
        assert_eq!(required, variable.required_for_twilio, "{}: required", variable.name);
    }
    for name in env.keys() {
        assert!(
            SERVER_VARIABLES.iter().any(|v| v.name == name),
            "app.json declares {name}, which the server does not read"
        );
    }
}

#[test]
fn the_procfile_serves_on_every_interface() {
    let procfile = root_file("Procfile");
    let web = procfile.lines().find(|l| l.starts_with("web:")).expect("a web process");
    assert!(web.contains("trworker serve"), "{web}");
    assert!(web.contains("--bind 0.0.0.0"), "Heroku's router reaches the dyno from outside: {web}");
}

#[test]
fn the_dockerfile_runs_unprivileged_with_a_volume_and_a_health_check() {
    let dockerfile = root_file("Dockerfile");
    let stages = dockerfile.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage");
    for needed in ["USER ", "VOLUME ", "EXPOSE ", "HEALTHCHECK ", "trworker\", \"health"] {
        assert!(dockerfile.contains(needed), "the Dockerfile has no {needed}");
    }
    assert!(
        root_file(".dockerignore").lines().any(|l| l.trim() == "target"),
        ".dockerignore leaves out target"
    );
}

#[test]
fn the_readme_documents_every_variable() {
    let readme = root_file("README.md");
    for variable in SERVER_VARIABLES {
        assert!(
            readme.contains(&format!("`{}`", variable.name)),
            "README.md does not document {}",
            variable.name
        );
    }
    for section in ["## Quick start", "## Deploying", "## Configuration", "## Command line", "## Tests"] {
        assert!(readme.contains(section), "README.md has no {section}");
    }
}
