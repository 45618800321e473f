//! Thousands of resources on one host: duplicates are still found and reported with both
//! places, whichever way they are declared (issue 19 made the checks lookups instead of
//! scans; these tests keep what they report).

use exctl_engine::desired;
use exctl_manifest::Diagnostic;

const HOST: &str = "hosts:\n  EX01:\n    endpoint: https://ex01:5986/wsman\n    user: C\\u\n    credential: env:X\n    exchange: 2010-sp3\n";

/// Builds the desired state of a repository of named files.
fn build(files: &[(&str, String)]) -> (desired::DesiredState, Vec<(Diagnostic, Vec<String>)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("inventory.yaml"), HOST).expect("inventory");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("manifest");
    }
    let (sources, docs, mut diags) = exctl_manifest::load_paths(&[dir.path().to_path_buf()]);
    let state = desired::build(&sources, &docs, &mut diags);
    // Each diagnostic with `file:line` of its span and of each related span.
    let place = |s: exctl_manifest::Span| {
        let path = sources.path(s.file);
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{file}:{}", s.start.line)
    };
    let out = diags
        .into_vec()
        .into_iter()
        .map(|d| {
            let mut places: Vec<String> = d.span.map(place).into_iter().collect();
            places.extend(d.related.iter().map(|(s, _)| place(*s)));
            (d, places)
        })
        .collect();
    (state, out)
}

/// A resource document with associations `user00001` .. `user<n>`, two lines each
/// (item k starts at line 2 + 2 (k - 1) after `targets` and the section key).
fn associations(n: usize, extra: &str) -> String {
    let mut s = String::from("targets: [EX01]\nthrottling_associations:\n");
    for i in 1..=n {
        s.push_str(&format!("  - identity: user{i:05}\n    policy: default\n"));
    }
    s.push_str(extra);
    s
}

const N: usize = 3000;

#[test]
fn a_duplicate_among_thousands_in_one_list_names_both_lines() {
    // Item 1500 again at the end, spelt in upper case: identities ignore case.
    let (state, diags) = build(&[(
        "site.yaml",
        associations(N, "  - identity: USER01500\n    policy: default\n"),
    )]);
    let dups: Vec<&(Diagnostic, Vec<String>)> = diags
        .iter()
        .filter(|(d, _)| d.code == "exchange::duplicate-resource")
        .collect();
    assert_eq!(dups.len(), 1, "{diags:?}");
    let (d, places) = dups[0];
    assert_eq!(
        d.message,
        "the association of USER01500 is declared more than once"
    );
    // The later declaration, then the first.
    assert_eq!(
        places,
        &[
            format!("site.yaml:{}", 3 + 2 * N),
            format!("site.yaml:{}", 3 + 2 * 1499),
        ]
    );
    assert_eq!(
        state.resources["EX01"].len(),
        N,
        "the first declaration wins"
    );
}

#[test]
fn a_duplicate_among_thousands_across_documents_names_both_files() {
    let (state, diags) = build(&[
        ("a.yaml", associations(N, "")),
        (
            "b.yaml",
            "targets: [EX01]\nthrottling_associations:\n  - identity: User02999\n    policy: default\n"
                .to_string(),
        ),
    ]);
    let dups: Vec<&(Diagnostic, Vec<String>)> = diags
        .iter()
        .filter(|(d, _)| d.code.ends_with("duplicate-resource"))
        .collect();
    assert_eq!(dups.len(), 1, "{diags:?}");
    let (d, places) = dups[0];
    assert_eq!(d.code, "manifest::duplicate-resource");
    assert_eq!(
        d.message,
        "throttling_associations User02999 is declared twice for the same host"
    );
    assert_eq!(
        places,
        &["b.yaml:3".to_string(), format!("a.yaml:{}", 3 + 2 * 2998)]
    );
    let ids = &state.resources["EX01"];
    assert_eq!(ids.len(), N);
    assert!(ids.iter().any(|r| r.id == "user02999"));
}

#[test]
fn a_duplicate_among_thousands_merged_from_layers_names_both_lines() {
    // A baseline with thousands of associations, and a site override that declares one
    // of them twice in its own list: the merge by identity reports the second.
    let inventory = format!("sites:\n  lon:\n    baselines: [org]\n{HOST}    site: lon\n");
    let mut baseline = String::from("baseline: org\nthrottling_associations:\n");
    for i in 1..=N {
        baseline.push_str(&format!("  - identity: user{i:05}\n    policy: default\n"));
    }
    let site = "site: lon\nthrottling_associations:\n  - identity: user00042\n    policy: default\n  - identity: USER00042\n    policy: default\n";
    let (state, diags) = build(&[
        ("inventory.yaml", inventory),
        ("org.yaml", baseline),
        ("lon.yaml", site.to_string()),
    ]);
    let dups: Vec<&(Diagnostic, Vec<String>)> = diags
        .iter()
        .filter(|(d, _)| d.code == "manifest::duplicate-entry")
        .collect();
    assert_eq!(dups.len(), 1, "{diags:?}");
    // The first is the entry it merged into: the baseline's.
    assert_eq!(
        dups[0].1,
        &["lon.yaml:5".to_string(), format!("org.yaml:{}", 3 + 2 * 41)]
    );
    assert_eq!(state.resources["EX01"].len(), N);
}

#[test]
fn thousands_of_sites_and_hosts_keep_their_duplicate_reports_and_membership() {
    // 2,000 declared sites (one declared again at the end, in upper case), and 2,000
    // hosts each naming its site, half of them a site no `sites:` entry declares.
    let mut inv = String::from("sites:\n");
    for i in 0..2000 {
        inv.push_str(&format!("  s{i:04}: {{labels: {{n: '{i}'}}}}\n"));
    }
    inv.push_str("  S0777: {}\nhosts:\n");
    for i in 0..2000 {
        let site = if i % 2 == 0 {
            format!("s{i:04}")
        } else {
            format!("extra{i:04}")
        };
        inv.push_str(&format!(
            "  EX{i:04}:\n    endpoint: https://ex{i:04}:5986/wsman\n    user: C\\u\n    credential: env:X\n    exchange: 2010-sp3\n    site: {site}\n"
        ));
    }
    let (state, diags) = build(&[("inventory.yaml", inv)]);
    let dups: Vec<&(Diagnostic, Vec<String>)> = diags
        .iter()
        .filter(|(d, _)| d.code == "manifest::duplicate-site")
        .collect();
    assert_eq!(dups.len(), 1, "{diags:?}");
    assert_eq!(
        dups[0].1,
        &[
            "inventory.yaml:2002".to_string(),
            "inventory.yaml:779".to_string()
        ]
    );
    // 2,000 declared sites and 1,000 named by hosts only.
    assert_eq!(state.sites.len(), 3000);
    assert_eq!(
        state.site_of("EX0778").map(|s| s.name.as_str()),
        Some("s0778")
    );
    assert_eq!(
        state.site_of("EX0777").map(|s| s.name.as_str()),
        Some("extra0777")
    );
    assert_eq!(state.site("S0778").map(|s| s.hosts.len()), Some(1));
}
