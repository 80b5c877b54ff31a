//! Resident memory of each model alone and of the whole assistant.
//!
//! `cargo run --release -p saker-assist --example rss_probe -- emb|llm|llm,emb|asst`
#[path = "../tests/common/mod.rs"]
mod common;
fn rss(k: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(k))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    println!("start: RSS {:.0} peak {:.0}", rss("VmRSS:"), rss("VmHWM:"));
    if which.contains("emb") {
        let e = saker_models::Embedder::load_with_threads(&common::minilm_dir(), 1).unwrap();
        println!(
            "embedder: RSS {:.0} peak {:.0}",
            rss("VmRSS:"),
            rss("VmHWM:")
        );
        let _ = e.embed(&["hello world"]).unwrap();
        println!(
            "embedder+1: RSS {:.0} peak {:.0}",
            rss("VmRSS:"),
            rss("VmHWM:")
        );
        std::mem::forget(e);
    }
    if which.contains("asst") {
        let a = saker_assist::Assistant::new(saker_assist::AssistConfig {
            embedder_dir: Some(common::minilm_dir()),
            model_path: Some(common::llm_path()),
            threads: 1,
            ..Default::default()
        })
        .unwrap();
        println!(
            "assistant: RSS {:.0} peak {:.0}",
            rss("VmRSS:"),
            rss("VmHWM:")
        );
        std::mem::forget(a);
    }
    if which.contains("llm") {
        let mut l = saker_models::Llm::load(
            &common::llm_path(),
            saker_models::LlmOptions {
                threads: 1,
                ..Default::default()
            },
        )
        .unwrap();
        println!("llm: RSS {:.0} peak {:.0}", rss("VmRSS:"), rss("VmHWM:"));
        let _ = l
            .generate_text(
                &[
                    saker_models::ChatMessage::system("You are a helpful assistant."),
                    saker_models::ChatMessage::user("hi"),
                ],
                &saker_models::GenOptions {
                    max_tokens: 20,
                    ..Default::default()
                },
            )
            .unwrap();
        println!(
            "llm+gen: RSS {:.0} peak {:.0}",
            rss("VmRSS:"),
            rss("VmHWM:")
        );
        std::mem::forget(l);
    }
}
