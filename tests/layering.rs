//! The layering of `src/`, checked: a module may use only the modules
//! below it (see ARCHITECTURE.md). Reads the sources; needs nothing else.

use std::path::Path;

/// Top to bottom. Folders and files of `src/` by their first path segment.
const LAYERS: &[&[&str]] = &[
    &["main", "cli", "lib", "logging"],
    &["container"],
    &["runtime"],
    &["ctl"],
    &["unit"],
    &["supervisor"],
    &["entrypoint"],
    &["registry"],
    &["sys"],
    &["signal", "resources", "sorted"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let own = rank(&module).unwrap_or_else(|| panic!("{module} is in no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for (i, _) in line.match_indices("crate::") {
                let used: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let Some(theirs) = rank(&used) else { continue };
                if theirs < own {
                    wrong.push(format!("{}:{}: {module} uses {used}", relative.display(), n + 1));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
}
