//! Turns the test services' URLs into cfgs, so the tests that need PostgreSQL, Redis or a Redis Cluster are
//! reported as ignored (not as passed) when their URL is unset, and run (failing loudly if the
//! service is unreachable) when it is set.

fn main() {
    for (var, cfg) in [
        ("TOLLGATE_TEST_DATABASE_URL", "tollgate_pg"),
        ("TOLLGATE_TEST_REDIS_URL", "tollgate_redis"),
        // A Redis Cluster (`redis+cluster://host:port,...`, started by .ci/redis-cluster.sh).
        ("TOLLGATE_TEST_REDIS_CLUSTER_URL", "tollgate_redis_cluster"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
