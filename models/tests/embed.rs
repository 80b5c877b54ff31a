mod common;

use saker_models::{cosine, Embedder, ModelError};

#[test]
fn quickstart_cosines_match_sentence_transformers() {
    let emb = Embedder::load(&common::minilm_dir()).expect("load MiniLM");
    assert_eq!(emb.dim(), 384);
    let v = emb
        .embed(&[
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
        ])
        .expect("embed");
    assert_eq!(v.len(), 3);
    for x in &v {
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
    }
    // Published reference values (sentence-transformers quickstart).
    let pairs = [((0, 1), 0.6660), ((0, 2), 0.1046), ((1, 2), 0.1411)];
    for ((a, b), want) in pairs {
        let got = cosine(&v[a], &v[b]);
        assert!(
            (got - want).abs() < 1e-3,
            "cos({a},{b}) = {got:.4}, want {want}"
        );
    }
}

#[test]
fn padding_does_not_change_embeddings() {
    let emb = Embedder::load(&common::minilm_dir()).expect("load MiniLM");
    let alone = emb.embed(&["short"]).expect("embed");
    let batch = emb
        .embed(&[
            "short",
            "a much longer sentence that forces padding of the first one",
        ])
        .expect("embed");
    assert!(cosine(&alone[0], &batch[0]) > 0.9999);
    assert!(emb.embed(&[]).expect("empty").is_empty());
}

#[test]
fn missing_dir_names_the_file() {
    let err = Embedder::load(std::path::Path::new("/nonexistent/minilm")).unwrap_err();
    assert!(matches!(err, ModelError::MissingFile(_)), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/minilm/config.json"),
        "{err}"
    );
}
