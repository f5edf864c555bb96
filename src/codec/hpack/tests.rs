//! HPACK tests: RFC 7541 Appendix C exactly (C.1 integers, C.2 single fields,
//! C.3/C.4 requests, C.5/C.6 responses with evictions), every decoder error, and a
//! fuzz loop over mutated blocks.

use super::*;

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn fields(list: &[Header]) -> Vec<(String, String)> {
    list.iter()
        .map(|h| {
            (
                String::from_utf8(h.name.clone()).unwrap(),
                String::from_utf8(h.value.clone()).unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// One step of an Appendix C example: the block, the decoded list, the dynamic
/// table afterwards (newest first) and its size.
struct Example<'a> {
    section: &'a str,
    block: &'a str,
    list: &'a [(&'a str, &'a str)],
    table: &'a [(&'a str, &'a str)],
    size: usize,
}

fn run(limit: usize, examples: &[Example<'_>]) {
    let mut decoder = Decoder::new(limit, 16_384);
    for example in examples {
        let list = decoder
            .decode(&unhex(example.block))
            .unwrap_or_else(|e| panic!("{}: {e}", example.section));
        assert_eq!(fields(&list), pairs(example.list), "{}", example.section);
        let table: Vec<Header> = decoder.table().cloned().collect();
        assert_eq!(fields(&table), pairs(example.table), "{}", example.section);
        assert_eq!(decoder.table_size(), example.size, "{}", example.section);
    }
}

#[test]
fn c_1_integers() {
    let mut out = Vec::new();
    encode_integer(&mut out, 0, 5, 10);
    assert_eq!(out, [0x0a]);
    out.clear();
    encode_integer(&mut out, 0, 5, 1337);
    assert_eq!(out, [0x1f, 0x9a, 0x0a]);
    out.clear();
    encode_integer(&mut out, 0, 8, 42);
    assert_eq!(out, [0x2a]);
    for (bytes, prefix, value) in [
        (&[0x0a][..], 5, 10),
        (&[0x1f, 0x9a, 0x0a][..], 5, 1337),
        (&[0xff, 0x9a, 0x0a][..], 5, 1337),
        (&[0x2a][..], 8, 42),
    ] {
        let mut input = Input {
            block: bytes,
            pos: 0,
        };
        assert_eq!(input.integer(prefix), Ok(value));
        assert_eq!(input.pos, bytes.len());
    }
}

#[test]
fn c_2_single_fields() {
    // C.2.1 literal with indexing.
    run(
        4096,
        &[Example {
            section: "C.2.1",
            block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            list: &[("custom-key", "custom-header")],
            table: &[("custom-key", "custom-header")],
            size: 55,
        }],
    );
    // C.2.2 without indexing, C.2.3 never indexed, C.2.4 indexed.
    for (section, block, list) in [
        (
            "C.2.2",
            "040c 2f73 616d 706c 652f 7061 7468",
            (":path", "/sample/path"),
        ),
        (
            "C.2.3",
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            ("password", "secret"),
        ),
        ("C.2.4", "82", (":method", "GET")),
    ] {
        run(
            4096,
            &[Example {
                section,
                block,
                list: &[list],
                table: &[],
                size: 0,
            }],
        );
    }
    // The encoder reproduces C.2.2 and C.2.4 (the representations it uses).
    let mut out = Vec::new();
    encode_literal(&mut out, Name::Indexed(index::PATH), b"/sample/path", false);
    assert_eq!(out, unhex("040c 2f73 616d 706c 652f 7061 7468"));
    out.clear();
    encode_indexed(&mut out, 2);
    assert_eq!(out, [0x82]);
}

const REQUEST_1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQUEST_2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQUEST_TABLE_1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQUEST_TABLE_2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQUEST_TABLE_3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

#[test]
fn c_3_requests_without_huffman() {
    run(
        4096,
        &[
            Example {
                section: "C.3.1",
                block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                list: REQUEST_1,
                table: REQUEST_TABLE_1,
                size: 57,
            },
            Example {
                section: "C.3.2",
                block: "8286 84be 5808 6e6f 2d63 6163 6865",
                list: REQUEST_2,
                table: REQUEST_TABLE_2,
                size: 110,
            },
            Example {
                section: "C.3.3",
                block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                list: REQUEST_3,
                table: REQUEST_TABLE_3,
                size: 164,
            },
        ],
    );
}

#[test]
fn c_4_requests_with_huffman() {
    run(
        4096,
        &[
            Example {
                section: "C.4.1",
                block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                list: REQUEST_1,
                table: REQUEST_TABLE_1,
                size: 57,
            },
            Example {
                section: "C.4.2",
                block: "8286 84be 5886 a8eb 1064 9cbf",
                list: REQUEST_2,
                table: REQUEST_TABLE_2,
                size: 110,
            },
            Example {
                section: "C.4.3",
                block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                list: REQUEST_3,
                table: REQUEST_TABLE_3,
                size: 164,
            },
        ],
    );
}

const DATE_1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE_2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESPONSE_1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", DATE_1),
    ("location", LOCATION),
];
const RESPONSE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", DATE_1),
    ("location", LOCATION),
];
const RESPONSE_3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", DATE_2),
    ("location", LOCATION),
    ("content-encoding", "gzip"),
    ("set-cookie", COOKIE),
];
const RESPONSE_TABLE_1: &[(&str, &str)] = &[
    ("location", LOCATION),
    ("date", DATE_1),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESPONSE_TABLE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", LOCATION),
    ("date", DATE_1),
    ("cache-control", "private"),
];
const RESPONSE_TABLE_3: &[(&str, &str)] = &[
    ("set-cookie", COOKIE),
    ("content-encoding", "gzip"),
    ("date", DATE_2),
];

#[test]
fn c_5_responses_without_huffman_evicting_at_256() {
    run(
        256,
        &[
            Example {
                section: "C.5.1",
                block: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 \
                        4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 \
                        7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                list: RESPONSE_1,
                table: RESPONSE_TABLE_1,
                size: 222,
            },
            Example {
                section: "C.5.2",
                block: "4803 3330 37c1 c0bf",
                list: RESPONSE_2,
                table: RESPONSE_TABLE_2,
                size: 222,
            },
            Example {
                section: "C.5.3",
                block: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a \
                        3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 \
                        444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 \
                        553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e \
                        3d31",
                list: RESPONSE_3,
                table: RESPONSE_TABLE_3,
                size: 215,
            },
        ],
    );
}

#[test]
fn c_6_responses_with_huffman_evicting_at_256() {
    run(
        256,
        &[
            Example {
                section: "C.6.1",
                block: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 \
                        9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 \
                        e9ae 82ae 43d3",
                list: RESPONSE_1,
                table: RESPONSE_TABLE_1,
                size: 222,
            },
            Example {
                section: "C.6.2",
                block: "4883 640e ffc1 c0bf",
                list: RESPONSE_2,
                table: RESPONSE_TABLE_2,
                size: 222,
            },
            Example {
                section: "C.6.3",
                block: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d \
                        1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b \
                        3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed \
                        4ee5 b106 3d50 07",
                list: RESPONSE_3,
                table: RESPONSE_TABLE_3,
                size: 215,
            },
        ],
    );
}

#[test]
fn encoder_output_decodes_back() {
    let mut block = Vec::new();
    encode_indexed(&mut block, index::METHOD_POST);
    encode_indexed(&mut block, index::SCHEME_HTTP);
    encode_literal(&mut block, Name::Indexed(index::PATH), b"/a/b", true);
    encode_literal(&mut block, Name::Literal(b"te"), b"trailers", true);
    encode_literal(&mut block, Name::Literal(b"x-long"), &[b'z'; 300], false);
    let list = Decoder::new(4096, 16_384).decode(&block).unwrap();
    let got = fields(&list);
    assert_eq!(got[0], (":method".into(), "POST".into()));
    assert_eq!(got[1], (":scheme".into(), "http".into()));
    assert_eq!(got[2], (":path".into(), "/a/b".into()));
    assert_eq!(got[3], ("te".into(), "trailers".into()));
    assert_eq!(got[4].1.len(), 300);
}

#[test]
fn size_updates_evict_and_are_bounded_by_our_limit() {
    let mut decoder = Decoder::new(4096, 16_384);
    decoder
        .decode(&unhex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))
        .unwrap();
    assert_eq!(decoder.table_size(), 57);
    // Two updates at the start of a block (0, then 4096) are allowed; the
    // first empties the table.
    let list = decoder.decode(&unhex("20 3fe1 1f 82")).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(decoder.table_size(), 0);
    // Index 62 is gone.
    assert_eq!(decoder.decode(&[0xbe]), Err(HpackError::BadIndex(62)));
    // Above our limit (4097).
    let mut block = Vec::new();
    encode_integer(&mut block, 0x20, 5, 4097);
    assert_eq!(
        Decoder::new(4096, 16_384).decode(&block),
        Err(HpackError::TableSizeTooLarge {
            requested: 4097,
            limit: 4096
        })
    );
    // After a field.
    assert_eq!(
        Decoder::new(4096, 16_384).decode(&[0x82, 0x20]),
        Err(HpackError::MisplacedSizeUpdate)
    );
    // A size update to 50 keeps only entries that fit; an entry larger than the
    // table empties it without error.
    let mut small = Decoder::new(4096, 16_384);
    let mut block = Vec::new();
    encode_integer(&mut block, 0x20, 5, 50);
    block.extend(unhex(
        "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
    ));
    small.decode(&block).unwrap();
    assert_eq!(small.table_size(), 0);
    small.decode(&unhex("4001 6101 62")).unwrap(); // a: b, 34 bytes
    assert_eq!(small.table_size(), 34);
    small.decode(&unhex("4001 6301 64")).unwrap(); // c: d evicts a: b
    assert_eq!(
        fields(&small.table().cloned().collect::<Vec<_>>()),
        pairs(&[("c", "d")])
    );
}

#[test]
fn malformed_blocks_are_errors() {
    let d = || Decoder::new(4096, 16_384);
    assert_eq!(d().decode(&[0x80]), Err(HpackError::BadIndex(0)));
    assert_eq!(d().decode(&[0xff, 0x00]), Err(HpackError::BadIndex(127)));
    assert_eq!(d().decode(&[0xff]), Err(HpackError::Truncated));
    assert_eq!(d().decode(&[0x04]), Err(HpackError::Truncated));
    assert_eq!(d().decode(&[0x04, 0x05, b'a']), Err(HpackError::Truncated));
    assert_eq!(d().decode(&[0x40, 0x01]), Err(HpackError::Truncated));
    assert_eq!(
        d().decode(&[0x84, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        Err(HpackError::IntegerOverflow)
    );
    assert_eq!(
        d().decode(&[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
        Err(HpackError::IntegerOverflow)
    );
    // A Huffman value with bad padding (0x00: '0' then 000).
    assert_eq!(
        d().decode(&[0x04, 0x81, 0x00]),
        Err(HpackError::Huffman(HuffmanError::PaddingNotOnes))
    );
    // A string literal claiming 2^32-1 bytes.
    assert_eq!(
        d().decode(&[0x04, 0x7f, 0x80, 0xff, 0xff, 0xff, 0x0f]),
        Err(HpackError::Truncated)
    );
}

#[test]
fn header_lists_are_bounded() {
    // 1000 copies of ":method: GET" (42 bytes each) against a 4096-byte limit.
    let block = vec![0x82; 1000];
    assert_eq!(
        Decoder::new(4096, 4096).decode(&block),
        Err(HpackError::ListTooLarge { limit: 4096 })
    );
    assert_eq!(
        Decoder::new(4096, 42 * 97)
            .decode(&block[..97])
            .unwrap()
            .len(),
        97
    );
    // A dynamic entry of ~4 KiB repeated: refused before it is copied.
    let mut block = vec![0x40, 0x01, b'n'];
    encode_integer(&mut block, 0, 7, 4000);
    block.extend(vec![b'v'; 4000]);
    block.extend(vec![0xbe; 10]);
    assert_eq!(
        Decoder::new(4096, 16_384).decode(&block),
        Err(HpackError::ListTooLarge { limit: 16_384 })
    );
    // A Huffman string that expands past the budget.
    let mut block = vec![0x00, 0x01, b'n'];
    let mut coded = Vec::new();
    huffman::encode(&[b'0'; 200], &mut coded);
    encode_integer(&mut block, 0x80, 7, coded.len());
    block.extend(coded);
    assert_eq!(
        Decoder::new(4096, 100).decode(&block),
        Err(HpackError::ListTooLarge { limit: 100 })
    );
}

#[test]
fn fuzz_mutated_and_random_blocks_never_panic_and_stay_bounded() {
    let seeds: Vec<Vec<u8>> = [
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        "3fe1 1f 4803 3330 37c1 c0bf",
    ]
    .iter()
    .map(|h| unhex(h))
    .collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut decoder = Decoder::new(512, 2048);
    let mut decoded = 0;
    for round in 0..100_000 {
        let block: Vec<u8> = if round % 4 == 0 {
            let len = (next() % 64) as usize;
            (0..len).map(|_| next() as u8).collect()
        } else {
            let mut block = seeds[(next() % seeds.len() as u64) as usize].clone();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % block.len();
                match next() % 3 {
                    0 => block[at] = next() as u8,
                    1 => block[at] ^= 1 << (next() % 8),
                    _ => block.truncate(at),
                }
                if block.is_empty() {
                    break;
                }
            }
            block
        };
        if let Ok(list) = decoder.decode(&block) {
            decoded += 1;
            assert!(list.iter().map(Header::size).sum::<usize>() <= 2048);
        } else if round % 16 == 0 {
            // A failed block leaves the table in an unknown state: a real
            // connection ends here; the fuzz loop sometimes starts over.
            decoder = Decoder::new(512, 2048);
        }
        assert!(decoder.table_size() <= 512);
        assert_eq!(
            decoder.table().map(Header::size).sum::<usize>(),
            decoder.table_size()
        );
    }
    // Many mutated blocks still decode: the success path is exercised too.
    assert!(decoded > 10_000, "decoded {decoded}");
}
