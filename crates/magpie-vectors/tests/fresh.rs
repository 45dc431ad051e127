//! The checked-in vectors are exactly what the generator writes (spec/wire.md §12).

#[test]
fn checked_in_vectors_are_fresh() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors");
    let mut total = 0;
    for (name, json) in magpie_vectors::files() {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| {
            panic!("spec/vectors/{name}: {e}; run `cargo run -p magpie-vectors`")
        });
        assert!(
            on_disk == json,
            "spec/vectors/{name} differs from the generator; run `cargo run -p magpie-vectors`"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        total += parsed["vectors"].as_array().map_or(0, Vec::len);
    }
    assert!(total >= 40, "only {total} vectors");
}

#[test]
fn vector_ids_are_unique() {
    let mut seen = std::collections::HashSet::new();
    for (_, json) in magpie_vectors::files() {
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        for v in parsed["vectors"].as_array().expect("vectors array") {
            let id = v["id"].as_str().expect("id").to_owned();
            assert!(seen.insert(id.clone()), "duplicate vector id {id}");
        }
    }
}
