//! Prints the field reference of the filter language as a Markdown table (for
//! docs/rules.md): `cargo run -p saker-daemon --example fields_md`.

fn main() {
    let fields = saker::fields::Fields::new();
    println!("| field | type | argument | description |\n|---|---|---|---|");
    for (id, d) in fields.registry.iter() {
        let missing = if saker::fields::NOT_PROVIDED.contains(&id) {
            " *(no value yet)*"
        } else {
            ""
        };
        let arg = match (d.takes_index, d.takes_name, d.arg_required) {
            (true, true, _) => "`[N]` or `.name` (required)",
            (true, false, false) => "optional `[N]`",
            (true, false, true) => "`[N]` (required)",
            (false, true, true) => "`.name` / `[name]` (required)",
            (false, true, false) => "optional `[name]`",
            _ => "",
        };
        println!(
            "| `{}` | {} | {} | {} |",
            d.name,
            d.ty.as_str(),
            arg,
            d.description.replace('|', "\\|") + missing
        );
    }
}
