//! Black-box checks of the binary's command line.

use crate::util;
use std::process::Command;

fn netloop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netloop"))
        .args(args)
        .output()
        .expect("run netloop")
}

#[test]
fn help_everywhere() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["serve", "echo", "--help"],
    ] {
        let out = netloop(args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{args:?}: {text}");
    }
    let text = String::from_utf8_lossy(&netloop(&["serve", "echo", "--help"]).stdout).to_string();
    for flag in [
        "--host",
        "--port",
        "--max-connections",
        "--idle-timeout",
        "--high-water-mark",
        "--max-write-buffer",
        "--grace",
    ] {
        assert!(text.contains(flag), "missing {flag}");
    }
}

#[test]
fn bad_units_are_refused_with_a_reason() {
    let out = netloop(&["serve", "echo", "--idle-timeout", "10x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
    let out = netloop(&["serve", "echo", "--max-write-buffer", "lots"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn busy_port_is_a_clean_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = netloop(&["serve", "echo", "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // One plain line, the cause said once.
    assert_eq!(
        err,
        format!("error: cannot listen on 127.0.0.1:{port}: address already in use\n")
    );
    let metrics = format!("127.0.0.1:{port}");
    let out = netloop(&["serve", "echo", "--port", "0", "--metrics", &metrics]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: cannot serve metrics on {metrics}: address already in use\n")
    );
}

/// Size defaults are shown in units, as they are typed.
#[test]
fn help_shows_sizes_in_units() {
    let text = String::from_utf8_lossy(&netloop(&["serve", "chat", "--help"]).stdout).to_string();
    for want in ["[default: 64KiB]", "[default: 8MiB]"] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(!text.contains("[default: 65536]"), "{text}");
    assert!(!text.contains("[default: 8388608]"), "{text}");
}

/// Durations take fractions: the server starts with `--grace 1.5s` and
/// `--idle-timeout 0.5s`, and the idle timeout closes a silent connection.
#[test]
fn durations_accept_fractions() {
    use std::io::Read;
    let srv = util::Server::start(&[
        "serve",
        "echo",
        "--port",
        "0",
        "--grace",
        "1.5s",
        "--idle-timeout",
        "0.5s",
    ]);
    let started = std::time::Instant::now();
    let mut c = util::connect(srv.addr);
    let mut buf = [0u8; 16];
    // Closed by the idle timeout: EOF (or a reset), not the read timeout.
    let res = loop {
        match c.read(&mut buf) {
            // A signal to the test process (a child exiting) is no answer.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    assert!(
        matches!(res, Ok(0)),
        "{res:?} after {:?}",
        started.elapsed()
    );
    let waited = started.elapsed();
    assert!(
        // Half a second, not half a millisecond nor never; wide bounds for a
        // loaded machine.
        waited >= std::time::Duration::from_millis(300)
            && waited < std::time::Duration::from_secs(5),
        "{waited:?}"
    );
}

/// `netloop completions SHELL` comes from the CLI definition: bash accepts
/// the script and registers it, and it knows the subcommands and flags.
#[test]
fn completions_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = netloop(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in ["serve", "connect", "upload", "token", "max-attempts"] {
            assert!(text.contains(word), "{shell}: {word} missing");
        }
    }
    let bin = env!("CARGO_BIN_EXE_netloop");
    match Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <('{bin}' completions bash) && complete -p netloop"
        ))
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("_netloop"), "{text}");
        }
        Err(e) => println!("skipped the bash check: cannot run bash: {e}"),
    }
    assert_eq!(netloop(&["completions", "tcsh"]).status.code(), Some(2));
}

/// `netloop man` is a roff page from the CLI definition; `--out-dir` writes
/// one per subcommand; groff renders it without warnings where installed.
#[test]
fn man_page_from_the_cli_definition() {
    let out = netloop(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(page.contains(".TH netloop 1"), "{page}");
    assert!(page.contains("netloop\\-serve(1)"), "{page}");
    // A missing directory is created (as `~/.local/share/man/man1` may be).
    let dir = std::env::temp_dir()
        .join(format!("netloop-man-{}", std::process::id()))
        .join("man1");
    let out = Command::new(env!("CARGO_BIN_EXE_netloop"))
        .arg("man")
        .arg("--out-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let connect = std::fs::read_to_string(dir.join("netloop-connect.1")).unwrap();
    assert!(connect.contains("max\\-attempts"), "{connect}");
    assert!(dir.join("netloop-serve-upload.1").exists());
    match Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(dir.join("netloop-serve-echo.1"))
        .output()
    {
        Ok(out) => {
            assert!(out.status.success());
            let warnings = String::from_utf8_lossy(&out.stderr);
            assert!(warnings.trim().is_empty(), "groff: {warnings}");
        }
        Err(e) => println!("skipped rendering: cannot run groff: {e}"),
    }
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// The default `--help` gives for `flag` of `netloop SUB... --help`:
/// `Some(value)`, `None` when it has none; panics when there is no such flag.
fn help_default(sub: &[String], flag: &str) -> Option<String> {
    let mut args: Vec<&str> = sub.iter().map(String::as_str).collect();
    args.push("--help");
    let out = netloop(&args);
    assert!(out.status.success(), "{args:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    let is_header = |l: &str| {
        let t = l.trim_start();
        t.starts_with('-')
            && t.chars()
                .nth(1)
                .is_some_and(|c| c == '-' || c.is_ascii_alphabetic())
    };
    let start = lines
        .iter()
        .position(|l| is_header(l) && l.split([' ', ',', '\t']).any(|w| w == flag))
        .unwrap_or_else(|| panic!("netloop {sub:?}: no {flag} in --help"));
    let mut block = lines[start].to_string();
    for l in &lines[start + 1..] {
        if is_header(l) {
            break;
        }
        block.push(' ');
        block.push_str(l.trim());
    }
    block
        .split("[default: ")
        .nth(1)
        .map(|rest| rest.split(']').next().unwrap_or("").to_string())
}

/// Every `[--flag VALUE]` of the README's command synopses agrees with
/// `--help`: a concrete VALUE is the flag's default there, and a
/// placeholder (`N`, `FILE`, `DURATION`, `HOST:PORT`) stands for a flag that
/// has none.
#[test]
fn readme_synopsis_matches_the_defaults() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut in_code = false;
    let mut sub: Vec<String> = Vec::new();
    let mut checked = 0;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            sub.clear();
            continue;
        }
        if !in_code {
            continue;
        }
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("netloop ") {
            sub = rest
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .map(str::to_string)
                .collect();
        } else if !t.starts_with('[') {
            sub.clear();
            continue;
        }
        if sub.is_empty() {
            continue;
        }
        let code = line.split(" #").next().unwrap_or(line);
        for group in code.split('[').skip(1) {
            let inner = group.split(']').next().unwrap_or("");
            let mut words = inner.split_whitespace();
            let (Some(flag), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            if !flag.starts_with("--") || value.contains('|') {
                continue;
            }
            let placeholder = value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == ':' || c == '_');
            let got = help_default(&sub, flag);
            if placeholder {
                assert_eq!(got, None, "README: netloop {sub:?} [{flag} {value}]");
            } else {
                assert_eq!(
                    got.as_deref(),
                    Some(value),
                    "README: netloop {sub:?} [{flag} {value}]"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} synopsis flags found");
}
