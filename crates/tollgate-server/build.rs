//! Turns the test services' URLs into cfgs, so the tests that need PostgreSQL or Redis are
//! reported as ignored (not as passed) when their URL is unset, and run (failing loudly if the
//! service is unreachable) when it is set.

fn main() {
    for (var, cfg) in [
        ("TOLLGATE_TEST_DATABASE_URL", "tollgate_pg"),
        ("TOLLGATE_TEST_REDIS_URL", "tollgate_redis"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
