use super::*;
use crate::outputs::http::ui::i18n::Lang;

fn form(pairs: &[(&str, &str)]) -> FormMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn hours_form_keeps_comments_and_other_sections() {
    let mut doc: DocumentMut =
        "# top comment\n[site]\nid = \"hq\" # the id\n[hours]\nmon = \"09:00-18:00\"\n"
            .parse()
            .unwrap();
    let sec = section("hours").unwrap();
    let errs = apply_form(
        &mut doc,
        sec,
        &form(&[
            ("mon", "08:00-17:00"),
            ("holidays", "2026-12-25\n2027-01-01"),
            ("sat", ""),
        ]),
        Lang::En,
    );
    assert!(errs.is_empty());
    let text = doc.to_string();
    assert!(
        text.contains("# top comment") && text.contains("# the id"),
        "{text}"
    );
    let cfg_doc: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(cfg_doc["hours"]["mon"].as_str(), Some("08:00-17:00"));
    assert_eq!(cfg_doc["hours"]["holidays"].as_array().unwrap().len(), 2);
    assert!(cfg_doc["hours"].get("sat").is_none());
    // All empty: the section goes (24x7).
    let errs = apply_form(&mut doc, sec, &form(&[]), Lang::En);
    assert!(errs.is_empty());
    assert!(doc.get("hours").is_none());
}

#[test]
fn blocks_sections_take_only_their_own_tables() {
    let mut doc: DocumentMut = "[site]\nid = \"hq\"\n[[agent]]\nid = \"a\"\n"
        .parse()
        .unwrap();
    let sec = section("agents").unwrap();
    let errs = apply_form(
        &mut doc,
        sec,
        &form(&[("toml", "[[agent]]\nid = \"b\"\n[site]\nid = \"x\"\n")]),
        Lang::En,
    );
    assert!(errs["toml"][0].contains("only [[agent]]"), "{errs:?}");
    let errs = apply_form(
        &mut doc,
        sec,
        &form(&[("toml", "[[agent]]\nid = \"b\"\nname = \"B\"\n")]),
        Lang::En,
    );
    assert!(errs.is_empty());
    assert!(doc.to_string().contains("id = \"b\""));
    let errs = apply_form(&mut doc, sec, &form(&[("toml", "[[agent\n")]), Lang::En);
    assert!(errs["toml"][0].contains("not valid TOML"));
    let errs = apply_form(
        &mut doc,
        section("policy").unwrap(),
        &form(&[("reopen_below", "three")]),
        Lang::En,
    );
    assert!(errs["reopen_below"][0].contains("whole number"));
}

#[test]
fn atomic_write_keeps_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lk.toml");
    std::fs::write(&p, "old").unwrap();
    write_atomically(&p, "new").unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
    assert_eq!(std::fs::read_to_string(prev_path(&p)).unwrap(), "old");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp") || n.contains("prev-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
