//! The one printer: data on stdout (text or JSON), messages and progress on
//! stderr, colours only through named styles and only when wanted, and every
//! name that came from a bucket escaped before it reaches a terminal.

pub mod text;

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::cli::{ColorChoice, OutputFormat};

/// Named styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Headings.
    Heading,
    /// Good news.
    Good,
    /// Warnings.
    Warn,
    /// Errors.
    Bad,
    /// Secondary text.
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Heading => "1",
            Style::Good => "32",
            Style::Warn => "33",
            Style::Bad => "31",
            Style::Dim => "2",
        }
    }
}

/// Writes output.
#[derive(Debug)]
pub struct Printer {
    /// Text or JSON.
    pub format: OutputFormat,
    color_out: bool,
    color_err: bool,
    stderr_tty: bool,
    /// Verbosity.
    pub verbose: u8,
}

impl Printer {
    /// A printer for the given choices.
    #[must_use]
    pub fn new(format: OutputFormat, color: ColorChoice, verbose: u8) -> Printer {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let want = |tty: bool| match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        Printer {
            format,
            color_out: want(stdout_tty),
            color_err: want(stderr_tty),
            stderr_tty,
            verbose,
        }
    }

    /// Wraps `s` in a style when colours are on for stdout.
    #[must_use]
    pub fn paint(&self, style: Style, s: &str) -> String {
        if self.color_out {
            format!("\x1b[{}m{s}\x1b[0m", style.code())
        } else {
            s.to_owned()
        }
    }

    fn paint_err(&self, style: Style, s: &str) -> String {
        if self.color_err {
            format!("\x1b[{}m{s}\x1b[0m", style.code())
        } else {
            s.to_owned()
        }
    }

    /// Writes a block of text to stdout.
    pub fn out(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth reporting.
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }

    /// Writes a value as pretty JSON to stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => self.out(&(s + "\n")),
            Err(e) => self.error(&format!("cannot render JSON: {e}"), None),
        }
    }

    /// Writes a value as one line of JSON to stdout (JSON Lines events).
    pub fn json_line<T: Serialize>(&self, value: &T) {
        match serde_json::to_string(value) {
            Ok(s) => self.out(&(s + "\n")),
            Err(e) => self.error(&format!("cannot render JSON: {e}"), None),
        }
    }

    /// Whether stderr is a terminal (progress and prompts go there).
    #[must_use]
    pub fn stderr_is_terminal(&self) -> bool {
        self.stderr_tty
    }

    /// An error on stderr, with an optional hint.
    pub fn error(&self, message: &str, hint: Option<&str>) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(
            e,
            "{} {}",
            self.paint_err(Style::Bad, "error:"),
            sanitize(message)
        );
        if let Some(h) = hint {
            let _ = writeln!(
                e,
                "  {} {}",
                self.paint_err(Style::Dim, "hint:"),
                sanitize(h)
            );
        }
    }

    /// A warning on stderr.
    pub fn warn(&self, message: &str) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{} {}",
            self.paint_err(Style::Warn, "warning:"),
            sanitize(message)
        );
    }

    /// A line on stderr when verbose.
    pub fn info(&self, message: &str) {
        if self.verbose > 0 {
            let _ = writeln!(std::io::stderr().lock(), "{}", sanitize(message));
        }
    }

    /// A spinner for a running step, on a terminal only.
    #[must_use]
    pub fn step_spinner(&self, title: &str) -> Option<ProgressBar> {
        if !self.stderr_tty {
            return None;
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(title.to_owned());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(pb)
    }

    /// A spinner counting listed objects, on a terminal only.
    #[must_use]
    pub fn spinner(&self, message: &str) -> Option<ProgressBar> {
        if !self.stderr_tty {
            return None;
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} objects ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(message.to_owned());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(pb)
    }
}

/// Escapes control characters (and the escape character) in untrusted text.
#[must_use]
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if s.chars().all(|c| !c.is_control() || c == '\n') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\n' {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(sanitize("plain"), "plain");
        assert_eq!(sanitize("a\x1b[31mred"), "a\\u{1b}[31mred");
        assert_eq!(sanitize("tab\there"), "tab\\there");
    }
}
