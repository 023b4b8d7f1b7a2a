//! `tollgate payments stripe-sync` against a store a real `tollgate serve` wrote: it reaches the
//! sync use case (whose behaviour against a Stripe-shaped server is tested in the server's
//! `tests/payments.rs`) and, for a workspace without Stripe, fails naming the missing setup,
//! before any call to Stripe, dry run or not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use common::{customer_on, serve, stderr, stdout, tollgate};

#[tokio::test]
async fn stripe_sync_needs_stripe_set_up_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, base) = serve(&data, &dir.path().join("server.log")).await;
    let yaml = std::fs::read_to_string(common::example("levqor")).unwrap();
    customer_on(&base, &yaml, "acme", "developer").await;
    server.terminate();
    let data_dir = data.to_str().unwrap();
    for dry_run in [true, false] {
        let mut cmd = tollgate();
        cmd.args(["payments", "stripe-sync", "--data-dir", data_dir]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{}", stdout(&out));
        assert!(
            stderr(&out).contains("payment_provider_missing"),
            "{}",
            stderr(&out)
        );
    }
    let help = tollgate()
        .args(["payments", "stripe-sync", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(stdout(&help).contains("--dry-run"), "{}", stdout(&help));
}
