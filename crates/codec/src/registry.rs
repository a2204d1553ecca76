//! [`Registry`]: the formats a render knows, in sniffing order, and everything derived from
//! them (the spec's format and save tokens, the README's tables, `--help`).

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::image::SampleFormat;
use crate::io::Source;
use crate::{Codec, Format, SaveOption, BUILTIN, SNIFF_LEN};

/// An ordered list of codecs; the first whose `sniff` accepts a file loads it.
#[derive(Clone)]
pub struct Registry {
    formats: Vec<Format>,
}

impl Registry {
    /// A registry of these codecs, in sniffing order.
    pub fn new(codecs: impl IntoIterator<Item = &'static dyn Codec>) -> Self {
        Registry {
            formats: codecs.into_iter().map(Format).collect(),
        }
    }

    /// The built-in codecs ([`BUILTIN`]).
    pub fn builtin() -> &'static Arc<Registry> {
        static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
        REGISTRY.get_or_init(|| Arc::new(Registry::new(BUILTIN.iter().copied())))
    }

    /// This registry with `codec` sniffed first (a custom format before the built-in ones).
    pub fn with_first(mut self, codec: &'static dyn Codec) -> Self {
        self.formats.insert(0, Format(codec));
        self
    }

    /// The formats, in sniffing order.
    pub fn formats(&self) -> impl Iterator<Item = Format> + '_ {
        self.formats.iter().copied()
    }

    /// The formats with a saver, in registry order.
    pub fn outputs(&self) -> impl Iterator<Item = Format> + '_ {
        self.formats().filter(|f| f.saver().is_some())
    }

    /// Identifies a format from the first bytes of a file.
    pub fn detect(&self, head: &[u8]) -> Option<Format> {
        self.formats().find(|f| f.codec().sniff(head))
    }

    /// Detects the format of a source without consuming it.
    pub fn sniff(&self, src: &mut Source) -> Result<Format> {
        let head = src.sniff(SNIFF_LEN).map_err(Error::Read)?;
        #[cfg(feature = "fault-injection")]
        crate::fault::strike(&head)?;
        self.detect(&head).ok_or(Error::UnknownFormat)
    }

    /// The output format of a token or file extension (case-insensitive; aliases too).
    pub fn output(&self, ext: &str) -> Option<Format> {
        let ext = ext.to_ascii_lowercase();
        self.outputs().find(|f| {
            f.saver()
                .is_some_and(|s| s.token == ext || s.aliases.contains(&ext.as_str()))
        })
    }

    /// The output format whose spec token is exactly `token` (aliases are not spec tokens).
    pub fn output_token(&self, token: &str) -> Option<Format> {
        self.outputs().find(|f| f.token() == token)
    }

    /// The output format tokens, in registry order (`jpg png webp ...`).
    pub fn format_tokens(&self) -> Vec<&'static str> {
        self.outputs().map(|f| f.token()).collect()
    }

    /// Every save option of every saver, one per token, in registry order (the order the
    /// spec's canonical spelling writes them in).
    pub fn save_options(&self) -> Vec<&'static SaveOption> {
        let mut v: Vec<&'static SaveOption> = Vec::new();
        for o in self
            .outputs()
            .flat_map(|f| f.saver().into_iter().flat_map(|s| s.options))
        {
            if !v.iter().any(|x| x.token == o.token) {
                v.push(o);
            }
        }
        v
    }

    /// The output tokens of the savers that take the save option `token`.
    pub fn takers(&self, token: &str) -> Vec<&'static str> {
        self.outputs()
            .filter(|f| option_of(*f, token).is_some())
            .map(|f| f.token())
            .collect()
    }

    /// The titles of every loadable format, for help texts (an output-only format lists no
    /// source extensions).
    pub fn input_titles(&self) -> Vec<&'static str> {
        self.formats()
            .map(|f| f.about())
            .filter(|a| !a.extensions.is_empty())
            .map(|a| a.title)
            .collect()
    }

    /// Which sources come out in which format when a spec names none (`HEIC / HEIF as jpg`).
    pub fn default_outputs(&self) -> String {
        let mut v: Vec<String> = self
            .formats()
            .filter_map(|f| {
                let a = f.about();
                a.serve_as.map(|o| format!("{} as {}", a.title, o.token()))
            })
            .collect();
        v.push(format!(
            "other formats without a saver as {}",
            Format::FALLBACK.token()
        ));
        v.join(", ")
    }

    /// One line per save option: spelling, meaning, range, default and the outputs taking it.
    fn option_lines(&self) -> Vec<(String, String)> {
        self.save_options()
            .into_iter()
            .map(|o| {
                let mut text = o.help.to_string();
                if let Some((lo, hi)) = o.range {
                    text.push_str(&format!(" {lo}..{hi}"));
                }
                text.push_str(&format!(" for {}", self.takers(o.token).join(", ")));
                if let Some(d) = o.default {
                    text.push_str(&format!(" (default {d})"));
                }
                (o.spelling(), text)
            })
            .collect()
    }

    /// The save-token lines of `.thumbfs/README` (two-space indent, spellings in 19 columns).
    pub fn option_help(&self) -> String {
        self.option_lines()
            .into_iter()
            .map(|(s, t)| format!("  {s:<19} {t}\n"))
            .collect()
    }

    /// The README's rows of the spec table for format and save tokens (Markdown).
    pub fn markdown_tokens(&self) -> String {
        let formats: Vec<String> = self
            .format_tokens()
            .iter()
            .map(|t| format!("`{t}`"))
            .collect();
        let mut t = format!(
            "| {} | output format (default: the source's, or {} for formats without a saver; see \
             Formats) |\n",
            formats.join(" "),
            Format::FALLBACK.token()
        );
        for (s, text) in self.option_lines() {
            t.push_str(&format!("| `{s}` | {text} |\n"));
        }
        t
    }

    /// The README's format table (Markdown).
    pub fn markdown_table(&self) -> String {
        let mut t = String::from("| format | load | save: token (sample types) |\n|---|---|---|\n");
        for f in self.formats() {
            let a = f.about();
            let save = match f.saver() {
                Some(s) => {
                    let takes: Vec<&str> = s
                        .accepts
                        .iter()
                        .map(|f| match f {
                            SampleFormat::U8 => "8-bit",
                            SampleFormat::U16 => "16-bit",
                            SampleFormat::F32 => "float",
                        })
                        .collect();
                    format!("`{}` ({}): {}", s.token, takes.join(", "), s.notes)
                }
                None => format!("(served as {})", f.default_output().token()),
            };
            let exts: Vec<String> = a.extensions.iter().map(|e| format!(".{e}")).collect();
            let title = match exts.is_empty() {
                true => a.title.to_string(),
                false => format!("{} ({})", a.title, exts.join(" ")),
            };
            t.push_str(&format!("| {title} | {} | {save} |\n", a.notes));
        }
        t
    }

    /// The `thumbfs --help` epilogue: formats, format tokens and save tokens.
    pub fn help_text(&self) -> String {
        format!(
            "Formats read (recognised by content): {}.\nOutput format tokens: {} (default: the \
             source's format; {}).\nSave tokens:\n{}",
            self.input_titles().join(", "),
            self.format_tokens().join(" "),
            self.default_outputs(),
            self.option_help().trim_end()
        )
    }
}

/// The save option `token` of `format`'s saver.
pub fn option_of(format: Format, token: &str) -> Option<&'static SaveOption> {
    format.saver()?.options.iter().find(|o| o.token == token)
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.formats.iter()).finish()
    }
}

impl PartialEq for Registry {
    fn eq(&self, other: &Self) -> bool {
        self.formats == other.formats
    }
}

impl Eq for Registry {}
