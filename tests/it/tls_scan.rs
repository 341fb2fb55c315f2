//! A TLS scan of the running server by an independent scanner, sslyze (PyPI;
//! `scripts/install-sslyze.sh`): compliant with Mozilla's "intermediate"
//! configuration (TLS 1.2 and 1.3 only, forward-secret AEAD suites, a certificate
//! that validates against the box CA with a lifespan within 366 days), and none of
//! the classic weaknesses (Heartbleed, CCS injection, ROBOT, client renegotiation,
//! compression).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::boot;

fn sslyze() -> PathBuf {
    let venv = std::env::var("NEXUS_SSLYZE_VENV")
        .unwrap_or_else(|_| "/var/cache/nexus-tools/sslyze-venv".into());
    PathBuf::from(venv).join("bin/sslyze")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_passes_a_tls_scan_against_mozillas_intermediate_configuration() {
    let scanner = sslyze();
    assert!(
        scanner.exists(),
        "the TLS scan needs sslyze: run scripts/install-sslyze.sh"
    );
    let s = boot(0).await;
    let out = s.dir.path().join("sslyze.json");
    let ca = s.running.ca_path.clone();
    let target = format!("localhost:{}", s.running.https.port());
    let json_out = out.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(scanner)
            .arg("--mozilla_config=intermediate")
            .arg("--certinfo_ca_file")
            .arg(ca)
            .arg(format!("--json_out={}", json_out.display()))
            .arg(target)
            .output()
    })
    .await
    .expect("join")
    .expect("run sslyze");
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && printed.contains("OK - Compliant"),
        "sslyze: not compliant\n{printed}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    let r = &report["server_scan_results"][0]["scan_result"];
    let accepted = |scan: &str| -> Vec<String> {
        assert_eq!(r[scan]["status"], "COMPLETED", "{scan}: {}", r[scan]);
        r[scan]["result"]["accepted_cipher_suites"]
            .as_array()
            .expect("suites")
            .iter()
            .map(|c| {
                c["cipher_suite"]["name"]
                    .as_str()
                    .expect("name")
                    .to_string()
            })
            .collect()
    };
    for old in [
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
    ] {
        assert_eq!(accepted(old), Vec::<String>::new(), "{old} must be refused");
    }
    for current in ["tls_1_2_cipher_suites", "tls_1_3_cipher_suites"] {
        let suites = accepted(current);
        assert!(!suites.is_empty(), "{current} should be offered");
        for suite in suites {
            assert!(
                suite.contains("_GCM_") || suite.contains("CHACHA20_POLY1305"),
                "{suite} is not an AEAD suite"
            );
            assert!(
                current == "tls_1_3_cipher_suites" || suite.starts_with("TLS_ECDHE_"),
                "{suite} is not forward-secret"
            );
        }
    }
    let result = |scan: &str, field: &str| r[scan]["result"][field].clone();
    assert_eq!(result("heartbleed", "is_vulnerable_to_heartbleed"), false);
    assert_eq!(
        result("openssl_ccs_injection", "is_vulnerable_to_ccs_injection"),
        false
    );
    assert_eq!(
        result("robot", "robot_result"),
        "NOT_VULNERABLE_RSA_NOT_SUPPORTED"
    );
    assert_eq!(
        result(
            "session_renegotiation",
            "is_vulnerable_to_client_renegotiation_dos"
        ),
        false
    );
    assert_eq!(result("tls_compression", "supports_compression"), false);
    let boxed =
        r["certificate_info"]["result"]["certificate_deployments"][0]["path_validation_results"]
            .as_array()
            .expect("validations")
            .iter()
            .find(|v| v["trust_store"]["name"] == "Supplied CA file")
            .cloned()
            .expect("validated against the box CA");
    assert_eq!(boxed["was_validation_successful"], true, "{boxed}");
}
