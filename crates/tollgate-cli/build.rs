//! Turns the test database's URL into a cfg, so the tests that need PostgreSQL are reported as
//! ignored (not as passed) when it is unset, and run (failing loudly if it is unreachable) when
//! it is set (as `tollgate-server`'s build script does).

fn main() {
    println!("cargo::rerun-if-env-changed=TOLLGATE_TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(tollgate_pg)");
    if std::env::var("TOLLGATE_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=tollgate_pg");
    }
}
