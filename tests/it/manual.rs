//! `exctl completions SHELL` and `exctl man [COMMAND]`: made from the command-line
//! definition, so every command and flag is in them.

use crate::common;

use common::{exctl, text};

#[test]
fn completions_for_each_shell_name_the_commands_and_their_flags() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = exctl().args(["completions", shell]).output().expect("runs");
        let script = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        for word in ["apply", "plan", "doctor", "markdown-max-bytes", "explain"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    let out = exctl()
        .args(["completions", "cmd.exe"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn the_manual_page_is_roff_for_exctl_and_each_command() {
    let out = exctl().arg("man").output().expect("runs");
    let page = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(page.contains(".TH exctl 1"), "{page}");
    assert!(
        page.contains("Keeps Microsoft Exchange 2010 servers"),
        "{page}"
    );
    let out = exctl().args(["man", "apply"]).output().expect("runs");
    let page = text(&out.stdout);
    assert!(page.contains(".TH exctl-apply 1"), "{page}");
    assert!(page.contains("auto\\-approve"), "{page}");
    let out = exctl().args(["man", "nope"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("no command 'nope'; one of: validate"));
}
