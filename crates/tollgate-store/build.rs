//! Turns on `cfg(tollgate_pg)` when `TOLLGATE_TEST_DATABASE_URL` is set, so that the PostgreSQL
//! tests run then and show as ignored (never as passed) otherwise.

fn main() {
    println!("cargo::rerun-if-env-changed=TOLLGATE_TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(tollgate_pg)");
    if std::env::var("TOLLGATE_TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=tollgate_pg");
    }
}
