//! tend.units(5) from `units/README.md`: a small Markdown-to-roff conversion
//! that knows only what that file uses (headings, paragraphs, bullet lists,
//! fenced code, one key table, inline code and links).

/// The whole man page for the unit reference `markdown`.
pub fn render(markdown: &str, version: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        ".TH TEND.UNITS 5 \"\" \"tend {version}\" \"tend manual\"\n\
         .SH NAME\ntend.units \\- unit files of tend init\n\
         .SH SYNOPSIS\n\\fI/etc/tend/units/\\fRNAME\\fI.toml\\fR\n\
         .SH DESCRIPTION\n"
    ));
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        i = block(&lines, i, &mut out);
    }
    out.push_str(
        ".SH SEE ALSO\n\\fBtend\\fR(1), \\fBtend-init\\fR(1), \\fBtend-ctl\\fR(1), \
         \\fBtend-boot\\fR(1)\n",
    );
    out
}

/// Converts the block starting at line `i`; returns the index after it.
fn block(lines: &[&str], i: usize, out: &mut String) -> usize {
    let line = lines[i];
    if line.trim().is_empty() {
        return i + 1;
    }
    if let Some(title) = line.strip_prefix("# ") {
        // The document title: the NAME section already says it.
        let _ = title;
        return i + 1;
    }
    if let Some(title) = line.strip_prefix("## ") {
        out.push_str(&format!(".SH {}\n", escape(&title.to_uppercase())));
        return i + 1;
    }
    if let Some(title) = line.strip_prefix("### ") {
        out.push_str(&format!(".SS {}\n", escape(title)));
        return i + 1;
    }
    if line.starts_with("```") {
        return code(lines, i + 1, out);
    }
    if line.starts_with('|') {
        return table(lines, i, out);
    }
    if let Some(first) = line.strip_prefix("- ") {
        return item(lines, i, first, out);
    }
    paragraph(lines, i, out)
}

fn code(lines: &[&str], mut i: usize, out: &mut String) -> usize {
    out.push_str(".PP\n.RS 4\n.nf\n");
    while i < lines.len() && !lines[i].starts_with("```") {
        out.push_str(&protect(&escape(lines[i])));
        out.push('\n');
        i += 1;
    }
    out.push_str(".fi\n.RE\n");
    i + 1
}

/// A table becomes a tagged list: the first column is the tag, the middle
/// columns "Header: value", the last column the text.
fn table(lines: &[&str], mut i: usize, out: &mut String) -> usize {
    let header = cells(lines[i]);
    i += 1;
    while i < lines.len() && lines[i].starts_with('|') {
        let row = cells(lines[i]);
        i += 1;
        if row.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) {
            continue;
        }
        let Some((tag, rest)) = row.split_first() else { continue };
        out.push_str(&format!(".TP\n{}\n", protect(&inline(tag))));
        let Some((last, middle)) = rest.split_last() else {
            continue;
        };
        for (name, value) in header.iter().skip(1).zip(middle) {
            out.push_str(&format!("{}: {}.\n.br\n", protect(&inline(name)), inline(value)));
        }
        out.push_str(&protect(&inline(last)));
        out.push('\n');
    }
    i
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// A bullet item: its first line and the indented lines that continue it.
fn item(lines: &[&str], mut i: usize, first: &str, out: &mut String) -> usize {
    let mut text = first.to_string();
    i += 1;
    while i < lines.len() && lines[i].starts_with("  ") && !lines[i].trim().is_empty() {
        text.push(' ');
        text.push_str(lines[i].trim());
        i += 1;
    }
    out.push_str(&format!(".IP \\(bu 2\n{}\n", protect(&inline(&text))));
    i
}

fn paragraph(lines: &[&str], mut i: usize, out: &mut String) -> usize {
    let mut text = String::new();
    while i < lines.len() {
        let line = lines[i];
        let starts_block = ["#", "```", "|", "- "].iter().any(|p| line.starts_with(p));
        if line.trim().is_empty() || (!text.is_empty() && starts_block) {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(line.trim());
        i += 1;
    }
    out.push_str(&format!(".PP\n{}\n", protect(&inline(&text))));
    i
}

/// Inline Markdown: `code` in bold, [text](target) as its text (plus the URL
/// for links that leave the page).
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            if let Some(end) = rest[1..].find('`') {
                out.push_str(&format!("\\fB{}\\fR", escape(&rest[1..1 + end])));
                rest = &rest[end + 2..];
                continue;
            }
        }
        if c == '[' {
            if let Some((link, len)) = link(rest) {
                out.push_str(&link);
                rest = &rest[len..];
                continue;
            }
        }
        out.push_str(&escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `[text](target)` at the start of `text`: its rendering and its length.
fn link(text: &str) -> Option<(String, usize)> {
    let close = text.find("](")?;
    let end = close + text[close..].find(')')?;
    let label = escape(&text[1..close]);
    let target = &text[close + 2..end];
    let shown = if target.starts_with('#') {
        label
    } else {
        format!("{label} <{}>", escape(target))
    };
    Some((shown, end + 1))
}

/// Escapes roff's specials and spells non-ASCII characters as roff glyphs,
/// so groff needs no preprocessor and warns about nothing.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '≥' => out.push_str("\\(>="),
            '≤' => out.push_str("\\(<="),
            '—' => out.push_str("\\(em"),
            '–' => out.push_str("\\(en"),
            '×' => out.push_str("\\(mu"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("\\[u{:04X}]", c as u32)),
        }
    }
    out
}

/// A line starting with `.` or `'` would be a roff request: guard it.
fn protect(line: &str) -> String {
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_code_links_and_glyphs() {
        assert_eq!(inline("a `b-c` [T](#t) ≥"), "a \\fBb\\-c\\fR T \\(>=");
        assert_eq!(inline("[h](https://x)"), "h <https://x>");
    }

    #[test]
    fn table_rows_become_tagged_paragraphs() {
        let md = "| key | type | meaning |\n| --- | --- | --- |\n| `a` | int | The A. |\n";
        let man = render(md, "1");
        assert!(man.contains(".TP\n\\fBa\\fR\ntype: int.\n.br\nThe A.\n"), "{man}");
    }

    #[test]
    fn a_line_starting_with_a_dot_is_guarded() {
        assert_eq!(protect(".x"), "\\&.x");
    }
}
