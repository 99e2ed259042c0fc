//! Deploying and operating: the real `trworker` binary as a server (health, readiness, metrics, logs,
//! SIGTERM), and the deployment files at the repository root (`app.json`, `Procfile`, `Dockerfile`) checked
//! against the variables the server reads.

mod helpers;

mod files;
mod health;
mod limits;
mod logs;
mod metrics;
mod proxy;
mod shutdown;
