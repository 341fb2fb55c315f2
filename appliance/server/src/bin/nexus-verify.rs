//! `nexus-verify BUNDLE [--key KEY] [--pinned CHECKPOINT]`: checks an audit bundle
//! exported by a NexusAI appliance, offline, with no store or server inside. Prints a
//! plain verdict; exits 0 when the bundle verifies, 1 when it does not, 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use nexus_tlog::{Bundle, Trust, Verifier, bundle};

const USAGE: &str =
    "usage: nexus-verify BUNDLE_DIR [--key KEY_FILE_OR_TEXT] [--pinned CHECKPOINT_FILE]

  --key     the log's verifier key you trust (name+hash+base64, as in the bundle's
            key.txt from an earlier visit); without it the bundle's own key is used
            and its fingerprint printed for you to compare
  --pinned  a checkpoint you kept earlier: the bundle's tree must extend it";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut trust = Trust::default();
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| args.next();
        match arg.as_str() {
            "--key" => match value(&mut args).map(|v| read_or_text(&v)) {
                Some(Ok(text)) => match Verifier::parse(&text) {
                    Ok(k) => trust.key = Some(k),
                    Err(e) => return usage(&format!("--key: {e}")),
                },
                Some(Err(e)) => return usage(&format!("--key: {e}")),
                None => return usage("--key needs a value"),
            },
            "--pinned" => match value(&mut args).map(std::fs::read_to_string) {
                Some(Ok(text)) => trust.pinned = Some(text),
                Some(Err(e)) => return usage(&format!("--pinned: {e}")),
                None => return usage("--pinned needs a file"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other if dir.is_none() && !other.starts_with('-') => dir = Some(PathBuf::from(other)),
            other => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    let Some(dir) = dir else {
        return usage("which bundle?");
    };
    let bundle = match Bundle::read_from(&dir) {
        Ok(b) => b,
        Err(e) => {
            println!("NOT VERIFIED: the bundle cannot be read: {e}");
            return ExitCode::from(1);
        }
    };
    match bundle::verify(&bundle, &trust) {
        Ok(verdict) => {
            print!("{verdict}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("{failure}");
            ExitCode::from(1)
        }
    }
}

/// A key given inline, or the file that holds it.
fn read_or_text(v: &str) -> std::io::Result<String> {
    if v.contains('+') && !std::path::Path::new(v).exists() {
        Ok(v.to_string())
    } else {
        std::fs::read_to_string(v)
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("nexus-verify: {problem}\n\n{USAGE}");
    ExitCode::from(2)
}
