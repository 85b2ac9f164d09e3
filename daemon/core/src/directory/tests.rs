use super::*;
use proptest::prelude::*;

fn customer(number: &str, name: &str) -> Customer {
    Customer {
        number: number.to_owned(),
        name: name.to_owned(),
        vip: false,
        level: None,
        best_time: None,
        notes: None,
    }
}

#[test]
fn normalize_number_cases() {
    let cases: &[(&str, Option<&str>)] = &[
        ("13800138000", Some("13800138000")),
        ("138 0013 8000", Some("13800138000")),
        ("+86 138-0013-8000", Some("+8613800138000")),
        ("(0755) 1234.5678", Some("075512345678")),
        ("(+86) 10 6552 9988", Some("+861065529988")),
        ("*99#", Some("*99#")),
        ("8001#123", Some("8001#123")),
        ("１３８００１３８０００", Some("13800138000")),
        ("＋８６　１３８－００１３", Some("+861380013")),
        ("0755–1234\u{00A0}5678", Some("075512345678")),
        ("\t 95555 \r\n", Some("95555")),
        ("", None),
        ("   ", None),
        ("+", None),
        ("*#", None),
        ("-().", None),
        ("138+0013", None),
        ("++86138", None),
        ("ext 123", None),
        ("1.38001E+10", None),
        ("'13800138000", None),
        ("123456789012345678901234567890123", None),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_number(input).as_deref(), *want, "input {input:?}");
    }
    assert_eq!(
        normalize_number(&"1".repeat(MAX_NUMBER_LEN)).map(|n| n.len()),
        Some(MAX_NUMBER_LEN)
    );
}

#[test]
fn level_parse_and_serde() {
    assert_eq!(CustomerLevel::parse(" b "), Some(CustomerLevel::B));
    assert_eq!(CustomerLevel::parse("A级"), Some(CustomerLevel::A));
    assert_eq!(CustomerLevel::parse("D"), None);
    assert_eq!(CustomerLevel::parse("AA"), None);
    assert_eq!(serde_json::to_string(&CustomerLevel::C).unwrap(), "\"C\"");
    let c: Customer = serde_json::from_str(r#"{"number":"1","name":"x","level":null}"#).unwrap();
    assert!(!c.vip);
    assert_eq!(c.best_time, None);
    let c: Customer =
        serde_json::from_str(r#"{"number":"1","name":"x","vip":true,"level":"A"}"#).unwrap();
    assert!(c.vip);
    assert_eq!(c.level, Some(CustomerLevel::A));
}

#[test]
fn validate_normalises_and_lists_every_problem() {
    let mut c = customer(" +86 138-0013-8000 ", "  张三 ");
    c.best_time = Some("  ".to_owned());
    c.notes = Some(" 老客户 ".to_owned());
    c.vip = true;
    let v = validate(&c).unwrap();
    assert_eq!(v.number, "+8613800138000");
    assert_eq!(v.name, "张三");
    assert_eq!(v.best_time, None);
    assert_eq!(v.notes.as_deref(), Some("老客户"));
    assert!(v.vip);
    assert_eq!(validate(&v).unwrap(), v, "validate is idempotent");

    let errs = validate(&customer("abc", " ")).unwrap_err();
    assert_eq!(
        errs,
        vec!["bad number \"abc\"".to_owned(), "empty name".to_owned()]
    );
    assert_eq!(
        validate(&customer("", "x")).unwrap_err(),
        vec!["missing number".to_owned()]
    );
    let errs = validate(&customer("1.38001E+10", "x")).unwrap_err();
    assert!(errs[0].contains("scientific notation"), "{errs:?}");
    let long = "x".repeat(100);
    let errs = validate(&customer(&long, "x")).unwrap_err();
    assert!(errs[0].ends_with("…"), "long values are cut: {errs:?}");
}

/// (number, name, vip, level, best_time, notes)
type Row<'a> = (
    &'a str,
    &'a str,
    bool,
    Option<CustomerLevel>,
    Option<&'a str>,
    Option<&'a str>,
);

struct Case<'a> {
    name: &'a str,
    input: Vec<u8>,
    rows: Vec<Row<'a>>,
    /// (line, fragment of the message, is a warning)
    errors: Vec<(usize, &'a str, bool)>,
}

fn row(number: &'static str, name: &'static str) -> Row<'static> {
    (number, name, false, None, None, None)
}

fn utf16le_with_bom(s: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

#[test]
fn import_files() {
    use CustomerLevel::*;
    let cases = vec![
            Case {
                name: "Chinese headers, GBK bytes as Excel on Chinese Windows saves them",
                // 号码,姓名,VIP,等级,最佳时间,备注\r\n138 0013 8000,张三,是,A,工作日 14:00-17:00,老客户\r\n
                input: vec![
                    0xBA, 0xC5, 0xC2, 0xEB, 0x2C, 0xD0, 0xD5, 0xC3, 0xFB, 0x2C, 0x56, 0x49, 0x50, 0x2C, 0xB5, 0xC8,
                    0xBC, 0xB6, 0x2C, 0xD7, 0xEE, 0xBC, 0xD1, 0xCA, 0xB1, 0xBC, 0xE4, 0x2C, 0xB1, 0xB8, 0xD7, 0xA2,
                    0x0D, 0x0A, 0x31, 0x33, 0x38, 0x20, 0x30, 0x30, 0x31, 0x33, 0x20, 0x38, 0x30, 0x30, 0x30, 0x2C,
                    0xD5, 0xC5, 0xC8, 0xFD, 0x2C, 0xCA, 0xC7, 0x2C, 0x41, 0x2C, 0xB9, 0xA4, 0xD7, 0xF7, 0xC8, 0xD5,
                    0x20, 0x31, 0x34, 0x3A, 0x30, 0x30, 0x2D, 0x31, 0x37, 0x3A, 0x30, 0x30, 0x2C, 0xC0, 0xCF, 0xBF,
                    0xCD, 0xBB, 0xA7, 0x0D, 0x0A,
                ],
                rows: vec![("13800138000", "张三", true, Some(A), Some("工作日 14:00-17:00"), Some("老客户"))],
                errors: vec![],
            },
            Case {
                name: "Chinese alternative headers (电话, 名称), GBK via encoder, 否 and blank flags",
                input: encoding_rs::GBK
                    .encode("电话,名称,vip,等级\n010-6552 9988,北京分公司,否,C级\n021 5555 0000,上海仓库,,\n")
                    .0
                    .into_owned(),
                rows: vec![
                    ("01065529988", "北京分公司", false, Some(C), None, None),
                    ("02155550000", "上海仓库", false, None, None, None),
                ],
                errors: vec![],
            },
            Case {
                name: "UTF-8 with BOM, English headers in another order and case",
                input: "\u{FEFF}Name,NUMBER,Level,VIP,Best Time,Notes\r\nAlice,+1 (555) 010-0000,b,YES,mornings,\r\n"
                    .as_bytes()
                    .to_vec(),
                rows: vec![("+15550100000", "Alice", true, Some(B), Some("mornings"), None)],
                errors: vec![],
            },
            Case {
                name: "semicolons (Excel in European locales), no BOM, LF",
                input: "number;name;level;notes\n0755-1234-5678;Müller GmbH;a;Rechnung, bitte\n".as_bytes().to_vec(),
                rows: vec![("075512345678", "Müller GmbH", false, Some(A), None, Some("Rechnung, bitte"))],
                errors: vec![],
            },
            Case {
                name: "Excel sep= line",
                input: b"sep=;\r\nnumber;name\r\n95555;Bank\r\n".to_vec(),
                rows: vec![row("95555", "Bank")],
                errors: vec![],
            },
            Case {
                name: "tab separated UTF-16LE (Excel 'Unicode text')",
                input: utf16le_with_bom("号码\t姓名\t备注\r\n13900139000\t李四\t\"说 \"\"周一\"\"\"\r\n"),
                rows: vec![("13900139000", "李四", false, None, None, Some("说 \"周一\""))],
                errors: vec![],
            },
            Case {
                name: "quoted notes with commas, doubled quotes and line breaks; later line numbers still right",
                input: concat!(
                    "number,name,notes\r\n",
                    "13800138000,\"Wang, Wei\",\"said \"\"call back\"\",\r\nthen hung up\r\nthird line\"\r\n",
                    "bad,Zhao,\r\n",
                    "13700137000,Qian,\"a\nb\"\r\n",
                    ",Sun,\r\n",
                )
                .as_bytes()
                .to_vec(),
                rows: vec![
                    (
                        "13800138000",
                        "Wang, Wei",
                        false,
                        None,
                        None,
                        Some("said \"call back\",\r\nthen hung up\r\nthird line"),
                    ),
                    ("13700137000", "Qian", false, None, None, Some("a\nb")),
                ],
                errors: vec![(5, "bad number \"bad\"", false), (8, "missing number", false)],
            },
            Case {
                name: "bad rows reported with their line numbers, every problem of a row in one error",
                input: concat!(
                    "number,name,vip,level\n",
                    "13800138000,Good,1,A\n",
                    "13800138001,,0,B\n",
                    "13800138002,Bad level,no,D\n",
                    "13800138003,Bad flag,maybe,\n",
                    "x1,,perhaps,E\n",
                    "1.38001E+10,Excel ate it,,\n",
                    "13800138004,Also good,是,c\n",
                )
                .as_bytes()
                .to_vec(),
                rows: vec![
                    ("13800138000", "Good", true, Some(A), None, None),
                    ("13800138004", "Also good", true, Some(C), None, None),
                ],
                errors: vec![
                    (3, "empty name", false),
                    (4, "bad level \"D\"", false),
                    (5, "bad vip flag \"maybe\"", false),
                    (6, "bad number \"x1\"; empty name; bad vip flag \"perhaps\"", false),
                    (6, "bad level \"E\"", false),
                    (7, "scientific notation", false),
                ],
            },
            Case {
                name: "duplicates within the file: the later row wins, reported as a warning",
                input: concat!(
                    "number,name\n",
                    "138 0013 8000,First\n",
                    "13900139000,Other\n",
                    "138-0013-8000,Second\n",
                    "13800138000,Third\n",
                )
                .as_bytes()
                .to_vec(),
                rows: vec![row("13900139000", "Other"), row("13800138000", "Third")],
                errors: vec![
                    (4, "duplicate number 13800138000 (also on line 2)", true),
                    (5, "duplicate number 13800138000 (also on line 4)", true),
                ],
            },
            Case {
                name: "blank lines, rows of empty cells, trailing empty columns, lone CR line ends",
                input: b"\r\n\r\nnumber,name,,\r,,,\r\r13800138000,A,,\r \r13900139000,B\r".to_vec(),
                rows: vec![row("13800138000", "A"), row("13900139000", "B")],
                errors: vec![],
            },
            Case {
                name: "values outside the header's columns",
                input: b"number,name,\n13800138000,A,oops\n13900139000,B,,,extra\n13700137000,C,,,\n".to_vec(),
                rows: vec![row("13700137000", "C")],
                errors: vec![(2, "outside the header's 3 columns", false), (3, "outside", false)],
            },
            Case {
                name: "formula-escaped cells lose their apostrophe, other apostrophes stay; Excel text numbers",
                input: b"number,name,notes\n'0755 1234 5678,'=HYPERLINK(1),'Tis fine\n13800138000,'+x,''-y\n".to_vec(),
                rows: vec![
                    ("075512345678", "=HYPERLINK(1)", false, None, None, Some("'Tis fine")),
                    ("13800138000", "+x", false, None, None, Some("'-y")),
                ],
                errors: vec![],
            },
            Case {
                name: "unknown columns stop the import and are named",
                input: b"number,name,email,Nmae\n13800138000,A,a@example.com,\n".to_vec(),
                rows: vec![],
                errors: vec![(1, "unknown column(s) \"email\", \"Nmae\"", false)],
            },
            Case {
                name: "repeated and missing columns",
                input: "\n号码,电话,notes\n13800138000,1,x\n".as_bytes().to_vec(),
                rows: vec![],
                errors: vec![(
                    2,
                    "repeated column(s) \"电话\" (another name for number); missing column(s) name",
                    false,
                )],
            },
            Case {
                name: "no header: data in the first row",
                input: b"13800138000,Zhang\n".to_vec(),
                rows: vec![],
                errors: vec![(1, "the first row must be a header", false)],
            },
            Case {
                name: "unterminated quote",
                input: b"number,name,notes\n13800138000,A,ok\n13900139000,B,\"never closed\n13700137000,C,\n".to_vec(),
                rows: vec![("13800138000", "A", false, None, None, Some("ok"))],
                errors: vec![(3, "unterminated quoted field (the quote opened on line 3", false)],
            },
            Case {
                name: "empty file",
                input: vec![],
                rows: vec![],
                errors: vec![(1, "empty file", false)],
            },
            Case {
                name: "only a BOM and blank lines",
                input: b"\xEF\xBB\xBF\r\n  \r\n".to_vec(),
                rows: vec![],
                errors: vec![(1, "empty file", false)],
            },
            Case {
                name: "header only",
                input: b"number,name\r\n".to_vec(),
                rows: vec![],
                errors: vec![],
            },
        ];
    for case in cases {
        let (got, errors) = parse_csv(&case.input);
        let want: Vec<Customer> = case
            .rows
            .iter()
            .map(|&(number, name, vip, level, best_time, notes)| Customer {
                number: number.to_owned(),
                name: name.to_owned(),
                vip,
                level,
                best_time: best_time.map(str::to_owned),
                notes: notes.map(str::to_owned),
            })
            .collect();
        assert_eq!(got, want, "case {:?}", case.name);
        // Several expectations may name fragments of the same error: compare per distinct line.
        let mut lines: Vec<usize> = case.errors.iter().map(|e| e.0).collect();
        lines.dedup();
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            lines,
            "case {:?}: {errors:?}",
            case.name
        );
        for (line, fragment, warning) in &case.errors {
            let e = errors.iter().find(|e| e.line == *line).unwrap();
            assert!(
                e.message.contains(fragment),
                "case {:?}: {e:?} lacks {fragment:?}",
                case.name
            );
            assert_eq!(e.is_warning(), *warning, "case {:?}: {e:?}", case.name);
        }
    }
}

#[test]
fn huge_headers_give_short_messages() {
    let header = format!("number,name,{}\n", vec!["x"; 50_000].join(","));
    let (rows, errors) = parse_csv(header.as_bytes());
    assert!(rows.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("and 49990 more"), "{errors:?}");
    let header = vec!["number"; 50_000].join(",") + ",name\n1,a\n";
    let (_, errors) = parse_csv(header.as_bytes());
    assert!(errors[0].message.contains("and 49989 more"), "{errors:?}");
}

#[test]
fn separator_detection_ignores_quoted_separators() {
    assert_eq!(detect_separator("\"a;b;c;d\",number,name"), ',');
    assert_eq!(detect_separator("number;name;\"a,b\""), ';');
    assert_eq!(detect_separator("number\tname\tnotes"), '\t');
    assert_eq!(detect_separator("number"), ',');
    assert_eq!(sep_directive("sep=\t"), Some('\t'));
    assert_eq!(sep_directive("SEP=;"), Some(';'));
    assert_eq!(sep_directive("sep=\""), None);
    assert_eq!(sep_directive("sep=;;"), None);
    assert_eq!(sep_directive("号码"), None);
}

#[test]
fn export_format() {
    let mut a = customer("+8613800138000", "Wang, Wei");
    a.vip = true;
    a.level = Some(CustomerLevel::A);
    a.best_time = Some("weekdays 14:00-17:00".to_owned());
    a.notes = Some("said \"hi\"\nline 2".to_owned());
    let mut b = customer("95555", "=cmd|' /C calc'!A0");
    b.notes = Some("-2+3".to_owned());
    b.best_time = Some("@SUM(A1)".to_owned());
    let csv = to_csv(&[a, b]);
    assert_eq!(
            csv,
            concat!(
                "\u{FEFF}number,name,vip,level,best_time,notes\r\n",
                "+8613800138000,\"Wang, Wei\",true,A,weekdays 14:00-17:00,\"said \"\"hi\"\"\nline 2\"\r\n",
                "95555,'=cmd|' /C calc'!A0,false,,'@SUM(A1),'-2+3\r\n",
            )
        );
    assert_eq!(
        to_csv(&[]),
        "\u{FEFF}number,name,vip,level,best_time,notes\r\n"
    );
}

#[test]
fn export_import_round_trip() {
    let mut all = vec![
        customer("13800138000", "张三"),
        customer("+8613900139000", "Wang, Wei"),
        customer("*99#", "=1+1"),
        customer("075512345678", "'=already escaped"),
    ];
    all[0].vip = true;
    all[0].level = Some(CustomerLevel::B);
    all[0].best_time = Some("工作日 14:00-17:00".to_owned());
    all[0].notes = Some("第一行\n第二行, \"引号\"".to_owned());
    all[2].notes = Some("+86 138".to_owned());
    all[3].level = Some(CustomerLevel::C);
    all[3].notes = Some("\t-inner tab; semicolon".trim().to_owned());
    let (back, errors) = parse_csv(to_csv(&all).as_bytes());
    assert_eq!(errors, vec![]);
    assert_eq!(back, all);
}

#[test]
fn row_error_display() {
    let e = RowError {
        line: 7,
        message: "empty name".to_owned(),
    };
    assert_eq!(e.to_string(), "line 7: empty name");
    assert!(!e.is_warning());
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range('a', 'z'),
                2 => proptest::char::range('0', '9'),
                1 => proptest::sample::select(vec![
                    ' ', ',', ';', '\t', '"', '\'', '\r', '\n', '=', '+', '-', '@', '*', '#', '(', ')', '.', '张',
                    '三', '级', '是', '\u{FEFF}', '\u{3000}', '１', 'É',
                ]),
            ],
            0..16,
        )
        .prop_map(|chars| chars.into_iter().collect())
}

fn level() -> impl Strategy<Value = Option<CustomerLevel>> {
    proptest::option::of(proptest::sample::select(vec![
        CustomerLevel::A,
        CustomerLevel::B,
        CustomerLevel::C,
    ]))
}

prop_compose! {
    fn any_customer()(
        number in "[+]?[0-9 ()*#.-]{0,20}",
        name in text(),
        vip in any::<bool>(),
        level in level(),
        best_time in proptest::option::of(text()),
        notes in proptest::option::of(text()),
    ) -> Customer {
        Customer { number, name, vip, level, best_time, notes }
    }
}

/// CSV-shaped input: a plausible header then cells from a nasty alphabet.
fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let header = proptest::sample::select(vec![
        "number,name,vip,level,best_time,notes\n",
        "号码;姓名;VIP;等级\r\n",
        "sep=\t\nname\tnumber\n",
        "\u{FEFF}number,name,bogus\n",
        "",
    ]);
    (header, proptest::collection::vec(text(), 0..12)).prop_map(|(h, cells)| {
        let mut s = h.to_owned();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            s.push_str(if i % 3 == 2 { "\n" } else { "," });
        }
        s.into_bytes()
    })
}

proptest! {
    #[test]
    fn parse_csv_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let (rows, errors) = parse_csv(&bytes);
        for c in &rows {
            prop_assert_eq!(validate(c), Ok(c.clone()));
        }
        for e in &errors {
            prop_assert!(e.line >= 1);
        }
    }

    #[test]
    fn parse_csv_never_panics_on_csv_like_text(bytes in csv_like()) {
        let (rows, errors) = parse_csv(&bytes);
        let mut numbers: Vec<&str> = rows.iter().map(|c| c.number.as_str()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        prop_assert_eq!(numbers.len(), rows.len(), "numbers are unique in the result");
        for c in &rows {
            prop_assert_eq!(validate(c), Ok(c.clone()));
        }
        let mut lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        let sorted = { let mut l = lines.clone(); l.sort_unstable(); l };
        prop_assert_eq!(&lines, &sorted, "errors in file order");
        lines.dedup();
        prop_assert_eq!(lines.len(), errors.len(), "one error per row");
    }

    #[test]
    fn normalize_number_is_idempotent(s in "[+]?[0-9 ()*#.+a-]{0,40}") {
        if let Some(n) = normalize_number(&s) {
            prop_assert_eq!(normalize_number(&n), Some(n.clone()));
            prop_assert!(n.len() <= MAX_NUMBER_LEN);
            let dialable =
                |(i, c): (usize, char)| c.is_ascii_digit() || "*#".contains(c) || (c == '+' && i == 0);
            prop_assert!(n.chars().enumerate().all(dialable));
        }
    }

    #[test]
    fn to_csv_then_parse_csv_round_trips(raw in prop::collection::vec(any_customer(), 0..12)) {
        let mut customers: Vec<Customer> = Vec::new();
        for c in raw.iter().filter_map(|c| validate(c).ok()) {
            if !customers.iter().any(|k| k.number == c.number) {
                customers.push(c);
            }
        }
        let csv = to_csv(&customers);
        let (back, errors) = parse_csv(csv.as_bytes());
        prop_assert_eq!(errors, vec![]);
        prop_assert_eq!(back, customers);
    }
}
