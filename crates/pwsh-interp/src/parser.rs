//! The parser: PowerShell source text to the [`ast`](super::ast) tree, for the subset listed
//! in the [module documentation](super).
//!
//! PowerShell's tokenization depends on where the parser is: `-Name` is a parameter in a
//! command's arguments but an operator in an expression, `5abc` is a string argument but an
//! error in an expression, `a,b` is an array everywhere. So this is a scannerless recursive
//! descent parser: each grammar rule reads characters directly with the mode it knows it is
//! in. Errors carry PowerShell's own messages and the position of the offending token.
//! Nesting is bounded by [`MAX_NESTING`] so that no input can exhaust the stack.

use std::sync::Arc;

use super::ast::*;
use super::error::{ParseError, ParseErrorKind};

/// How deeply blocks, parentheses and unary operators may nest.
pub const MAX_NESTING: usize = 100;

/// The characters PowerShell treats as a single quote.
fn is_single_quote(c: char) -> bool {
    exctl_pwsh::literal::is_single_quote(c)
}

/// The characters PowerShell treats as a double quote.
fn is_double_quote(c: char) -> bool {
    matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{201E}')
}

/// The characters PowerShell treats as a dash.
fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

fn is_space(c: char) -> bool {
    c != '\n' && c != '\r' && c.is_whitespace()
}

fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Characters that end a bareword (generic token) in argument mode.
fn ends_bareword(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, ';' | '|' | '&' | '(' | ')' | '{' | '}' | ',' | '<' | '>')
        || is_single_quote(c)
        || is_double_quote(c)
}

/// Parses a whole script.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let source = Arc::new(Source::new(text));
    let mut p = Parser {
        src: source.clone(),
        i: 0,
        depth: 0,
    };
    let block = p.script_block_body(Terminator::Eof, 0)?;
    Ok(Script {
        block: Arc::new(block),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Terminator {
    Eof,
    Brace,
    Paren,
}

struct Parser {
    src: Arc<Source>,
    i: usize,
    depth: usize,
}

type PResult<T> = Result<T, ParseError>;

const STATEMENT_KEYWORDS: &[&str] = &[
    "if", "elseif", "else", "while", "for", "foreach", "do", "until", "function", "filter", "try",
    "catch", "finally", "trap", "throw", "return", "exit", "break", "continue", "param", "begin",
    "process", "end", "in",
];

const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "switch",
    "data",
    "dynamicparam",
    "class",
    "enum",
    "using",
    "workflow",
    "configuration",
    "parallel",
    "sequence",
    "inlinescript",
];

impl Parser {
    // -----------------------------------------------------------------------------------
    // Characters and positions.

    fn peek(&self) -> Option<char> {
        self.src.chars().get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src.chars().get(self.i + n).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.src.chars().len()
    }

    fn error_at(
        &self,
        offset: usize,
        kind: ParseErrorKind,
        message: impl Into<String>,
    ) -> ParseError {
        let (line, column, line_text) =
            self.src.position(u32::try_from(offset).unwrap_or(u32::MAX));
        ParseError {
            kind,
            message: message.into(),
            line,
            column,
            line_text,
        }
    }

    fn error(&self, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        self.error_at(self.i, kind, message)
    }

    /// "Unexpected token 'x' in expression or statement." for the token at the cursor; the
    /// marker goes after the token, as PowerShell 2.0 puts it.
    fn unexpected(&self) -> ParseError {
        if let Some(e) = self.powershell_3_in() {
            return e;
        }
        let token = self.token_text_at(self.i);
        let end = self.i + token.chars().count();
        self.error_at(
            end,
            ParseErrorKind::UnexpectedToken,
            format!("Unexpected token '{token}' in expression or statement."),
        )
    }

    /// The error of PowerShell 2.0 for `-in` at the cursor, if it is there.
    fn powershell_3_in(&self) -> Option<ParseError> {
        let token = self.token_text_at(self.i);
        // PowerShell 2.0 has no `-in` (it came with 3.0): its tokenizer reads a `-` operator
        // followed by the keyword `in`, so it complains about the minus, marker after it.
        // Windows 7's PowerShell 2.0 on `If ($Action -in 'PintoStartMenu', ...)`: "You must
        // provide a value expression on the right-hand side of the '-' operator." at
        // `$Action - <<<< in` (PSAppDeployToolkit/PSAppDeployToolkit issue #436).
        // `-notin` is no keyword after the dash, so it takes the generic text of `unexpected`, as any
        // unknown operator does ("Unexpected token '-pin' in expression or statement.",
        // govinss/shakrdp issue #20).
        let mut t = token.chars();
        (t.next().is_some_and(is_dash) && t.as_str().eq_ignore_ascii_case("in")).then(|| {
            self.error_at(
                self.i + 1,
                ParseErrorKind::ExpectedExpression,
                "You must provide a value expression on the right-hand side of the '-' operator.",
            )
        })
    }

    fn token_text_at(&self, at: usize) -> String {
        let chars = self.src.chars();
        let mut end = at;
        while let Some(&c) = chars.get(end) {
            if c.is_whitespace()
                || (end > at && matches!(c, ';' | '(' | ')' | '{' | '}' | ',' | '|'))
            {
                break;
            }
            end += 1;
            if end - at >= 40 {
                break;
            }
        }
        if end == at {
            end = (at + 1).min(chars.len());
        }
        chars[at.min(chars.len())..end].iter().collect()
    }

    fn unsupported(&self, what: &str) -> ParseError {
        self.error(
            ParseErrorKind::Unsupported,
            format!("{what} is not supported by this PowerShell interpreter."),
        )
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Parser) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_NESTING {
            return Err(self.error(
                ParseErrorKind::TooDeep,
                format!(
                    "The script nests blocks or expressions more than {MAX_NESTING} levels deep."
                ),
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Skips spaces, comments and line continuations, not line breaks.
    fn skip_space(&mut self) -> PResult<()> {
        loop {
            match self.peek() {
                Some(c) if is_space(c) => self.i += 1,
                Some('`') if self.peek_at(1).is_some_and(is_newline) => {
                    self.i += 1;
                    if self.peek() == Some('\r') {
                        self.i += 1;
                    }
                    if self.peek() == Some('\n') {
                        self.i += 1;
                    }
                }
                Some('#') => {
                    while self.peek().is_some_and(|c| !is_newline(c)) {
                        self.i += 1;
                    }
                }
                Some('<') if self.peek_at(1) == Some('#') => {
                    let start = self.i;
                    self.i += 2;
                    loop {
                        match self.peek() {
                            None => {
                                return Err(self.error_at(
                                    start,
                                    ParseErrorKind::TerminatorExpectedAtEndOfString,
                                    "Missing the terminator '#>' of a block comment.",
                                ));
                            }
                            Some('#') if self.peek_at(1) == Some('>') => {
                                self.i += 2;
                                break;
                            }
                            _ => self.i += 1,
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Skips spaces, comments and line breaks.
    fn skip_space_nl(&mut self) -> PResult<()> {
        loop {
            self.skip_space()?;
            match self.peek() {
                Some(c) if is_newline(c) => self.i += 1,
                _ => return Ok(()),
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The bareword at the cursor, lower-cased, if it is followed by a character that ends
    /// a keyword.
    fn peek_word(&self) -> Option<String> {
        let chars = self.src.chars();
        let mut j = self.i;
        while chars.get(j).is_some_and(|c| c.is_ascii_alphabetic()) {
            j += 1;
        }
        if j == self.i {
            return None;
        }
        if chars.get(j).is_some_and(|&c| !ends_bareword(c)) {
            return None;
        }
        Some(
            chars[self.i..j]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase(),
        )
    }

    fn at_keyword(&self, kw: &str) -> bool {
        self.peek_word().as_deref() == Some(kw)
    }

    fn expect_keyword(&mut self, kw: &str) {
        self.i += kw.len();
    }

    // -----------------------------------------------------------------------------------
    // Script blocks and statement lists.

    /// The inside of a script block: optional `param(...)`, then named blocks or statements.
    fn script_block_body(&mut self, term: Terminator, start: usize) -> PResult<ScriptBlockAst> {
        self.skip_space_nl()?;
        self.skip_cmdlet_binding()?;
        let mut params = Vec::new();
        if self.at_keyword("param") {
            let save = self.i;
            self.expect_keyword("param");
            self.skip_space_nl()?;
            if self.peek() == Some('(') {
                self.i += 1;
                params = self.param_list()?;
            } else {
                self.i = save;
            }
        }
        self.skip_space_nl()?;
        let named = ["begin", "process", "end"]
            .iter()
            .any(|kw| self.at_keyword(kw) && self.followed_by_brace(kw.len()));
        let (begin, process, end) = if named {
            let (mut begin, mut process, mut end) = (None, None, None);
            loop {
                self.skip_space_nl()?;
                let Some(word) = self.peek_word() else { break };
                let slot = match word.as_str() {
                    "begin" => &mut begin,
                    "process" => &mut process,
                    "end" => &mut end,
                    _ => return Err(self.unexpected()),
                };
                self.i += word.len();
                self.skip_space_nl()?;
                let block = self.braced_block()?;
                *slot = Some(block);
            }
            (begin, process, end.unwrap_or_default())
        } else {
            (None, None, self.statement_list(term)?)
        };
        self.skip_space_nl()?;
        match term {
            Terminator::Eof if !self.at_end() => return Err(self.unexpected()),
            Terminator::Brace if self.peek() != Some('}') => {
                return Err(self.error(
                    ParseErrorKind::MissingEndCurlyBrace,
                    "Missing closing '}' in statement block.",
                ));
            }
            _ => {}
        }
        Ok(ScriptBlockAst {
            params,
            begin,
            process,
            end,
            span: Span::new(start, self.i + usize::from(term == Terminator::Brace)),
            source: self.src.clone(),
        })
    }

    fn followed_by_brace(&self, len: usize) -> bool {
        let chars = self.src.chars();
        let mut j = self.i + len;
        while chars.get(j).is_some_and(|c| c.is_whitespace()) {
            j += 1;
        }
        chars.get(j) == Some(&'{')
    }

    /// `[CmdletBinding(...)]` before `param`: accepted; common parameters are always
    /// accepted by functions in this interpreter.
    fn skip_cmdlet_binding(&mut self) -> PResult<()> {
        let chars = self.src.chars();
        let rest: String = chars[self.i.min(chars.len())..(self.i + 14).min(chars.len())]
            .iter()
            .collect();
        if rest.to_ascii_lowercase().starts_with("[cmdletbinding") {
            while let Some(c) = self.peek() {
                self.i += 1;
                if c == ']' {
                    self.skip_space_nl()?;
                    return Ok(());
                }
            }
            return Err(self.error(
                ParseErrorKind::MissingEndSquareBracket,
                "Missing ']' after CmdletBinding attribute.",
            ));
        }
        Ok(())
    }

    /// `{ statements }` with the cursor on `{`.
    fn braced_block(&mut self) -> PResult<Block> {
        if !self.eat('{') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing statement block.",
            ));
        }
        self.nested(|p| {
            let block = p.statement_list(Terminator::Brace)?;
            p.skip_space_nl()?;
            if !p.eat('}') {
                return Err(p.error(
                    ParseErrorKind::MissingEndCurlyBrace,
                    "Missing closing '}' in statement block.",
                ));
            }
            Ok(block)
        })
    }

    fn statement_list(&mut self, term: Terminator) -> PResult<Block> {
        let mut block = Block::default();
        loop {
            loop {
                self.skip_space_nl()?;
                if !self.eat(';') {
                    break;
                }
            }
            match (self.peek(), term) {
                (None, _) => break,
                (Some('}'), Terminator::Brace) | (Some(')'), Terminator::Paren) => break,
                (Some('}' | ')'), _) => return Err(self.unexpected()),
                _ => {}
            }
            if self.at_keyword("trap") {
                block.traps.push(self.trap()?);
            } else {
                let statement = self.statement()?;
                block.statements.push(statement);
            }
            self.skip_space()?;
            match self.peek() {
                None | Some('\n' | '\r' | ';') => {}
                Some('}') if term == Terminator::Brace => {}
                Some(')') if term == Terminator::Paren => {}
                Some(_) => return Err(self.unexpected()),
            }
        }
        Ok(block)
    }

    fn trap(&mut self) -> PResult<Trap> {
        self.expect_keyword("trap");
        self.skip_space_nl()?;
        let type_name = if self.peek() == Some('[') {
            let t = self.type_name()?;
            self.skip_space_nl()?;
            Some(t)
        } else {
            None
        };
        if self.peek() != Some('{') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing statement block in trap statement.",
            ));
        }
        let body = self.braced_block()?;
        Ok(Trap { type_name, body })
    }

    fn statement(&mut self) -> PResult<Statement> {
        self.nested(Parser::statement_inner)
    }

    fn statement_inner(&mut self) -> PResult<Statement> {
        let start = self.i;
        let mut label = None;
        if self.peek() == Some(':') && self.peek_at(1).is_some_and(is_name_char) {
            self.i += 1;
            let s = self.i;
            while self.peek().is_some_and(is_name_char) {
                self.i += 1;
            }
            label = Some(self.src.text(Span::new(s, self.i)));
            self.skip_space_nl()?;
            if !["while", "for", "foreach", "do"]
                .iter()
                .any(|k| self.at_keyword(k))
            {
                return Err(self.error(
                    ParseErrorKind::MissingStatementPart,
                    "A loop label must be followed by a loop statement.",
                ));
            }
        }
        let word = self.peek_word();
        let kind = match word.as_deref() {
            Some("if") => self.if_statement()?,
            Some("while") => {
                self.expect_keyword("while");
                let cond = self.paren_condition("while")?;
                let body = self.loop_body("while")?;
                StatementKind::While { label, cond, body }
            }
            Some("do") => self.do_statement(label)?,
            Some("for") => self.for_statement(label)?,
            Some("foreach") => self.foreach_statement(label)?,
            Some("function") | Some("filter") => self.function_statement()?,
            Some("try") => self.try_statement()?,
            Some("throw") => {
                self.expect_keyword("throw");
                StatementKind::Throw(self.optional_pipeline()?)
            }
            Some("return") => {
                self.expect_keyword("return");
                StatementKind::Return(self.optional_pipeline()?)
            }
            Some("exit") => {
                self.expect_keyword("exit");
                StatementKind::Exit(self.optional_pipeline()?)
            }
            Some("break") => {
                self.expect_keyword("break");
                StatementKind::Break(self.optional_label()?)
            }
            Some("continue") => {
                self.expect_keyword("continue");
                StatementKind::Continue(self.optional_label()?)
            }
            Some(
                kw @ ("elseif" | "else" | "catch" | "finally" | "until" | "in" | "param" | "begin"
                | "process" | "end"),
            ) => {
                if matches!(kw, "begin" | "process" | "end") && !self.followed_by_brace(kw.len()) {
                    return self.pipeline_statement(start);
                }
                return Err(self.unexpected());
            }
            Some(kw) if UNSUPPORTED_KEYWORDS.contains(&kw) => {
                return Err(self.unsupported(&format!("The '{kw}' statement")));
            }
            _ => return self.pipeline_statement(start),
        };
        Ok(Statement {
            kind,
            span: Span::new(start, self.i),
        })
    }

    fn optional_label(&mut self) -> PResult<Option<String>> {
        self.skip_space()?;
        let s = self.i;
        while self.peek().is_some_and(is_name_char) {
            self.i += 1;
        }
        Ok((self.i > s).then(|| self.src.text(Span::new(s, self.i))))
    }

    fn at_statement_end(&self) -> bool {
        matches!(self.peek(), None | Some('\n' | '\r' | ';' | '}' | ')'))
    }

    fn optional_pipeline(&mut self) -> PResult<Option<Pipeline>> {
        self.skip_space()?;
        if self.at_statement_end() {
            return Ok(None);
        }
        Ok(Some(self.pipeline()?))
    }

    /// `( pipeline )` after a keyword.
    fn paren_condition(&mut self, keyword: &str) -> PResult<Pipeline> {
        self.skip_space_nl()?;
        if !self.eat('(') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                format!("Missing opening '(' after keyword '{keyword}'."),
            ));
        }
        self.skip_space_nl()?;
        if self.peek() == Some(')') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                format!("Missing condition in {keyword} statement after '{keyword} ('."),
            ));
        }
        let cond = self.pipeline()?;
        self.skip_space_nl()?;
        if !self.eat(')') {
            return Err(self.error(
                ParseErrorKind::MissingEndParenthesis,
                format!("Missing closing ')' after expression in '{keyword}' statement."),
            ));
        }
        Ok(cond)
    }

    fn loop_body(&mut self, keyword: &str) -> PResult<Block> {
        self.skip_space_nl()?;
        if self.peek() != Some('{') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                format!("Missing statement body in {keyword} loop."),
            ));
        }
        self.braced_block()
    }

    fn if_statement(&mut self) -> PResult<StatementKind> {
        self.expect_keyword("if");
        let mut clauses = Vec::new();
        let mut keyword = "if";
        loop {
            let cond = self.paren_condition(keyword)?;
            self.skip_space_nl()?;
            if self.peek() != Some('{') {
                return Err(self.error(
                    ParseErrorKind::MissingStatementPart,
                    format!("Missing statement block after {keyword} ( condition )."),
                ));
            }
            let block = self.braced_block()?;
            clauses.push((cond, block));
            let save = self.i;
            self.skip_space_nl()?;
            if self.at_keyword("elseif") {
                self.expect_keyword("elseif");
                keyword = "elseif";
                continue;
            }
            if self.at_keyword("else") {
                self.expect_keyword("else");
                self.skip_space_nl()?;
                if self.peek() != Some('{') {
                    return Err(self.error(
                        ParseErrorKind::MissingStatementPart,
                        "Missing statement block after 'else' keyword.",
                    ));
                }
                let otherwise = Some(self.braced_block()?);
                return Ok(StatementKind::If { clauses, otherwise });
            }
            self.i = save;
            return Ok(StatementKind::If {
                clauses,
                otherwise: None,
            });
        }
    }

    fn do_statement(&mut self, label: Option<String>) -> PResult<StatementKind> {
        self.expect_keyword("do");
        self.skip_space_nl()?;
        if self.peek() != Some('{') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing statement block after 'do'.",
            ));
        }
        let body = self.braced_block()?;
        self.skip_space_nl()?;
        let until = if self.at_keyword("while") {
            self.expect_keyword("while");
            false
        } else if self.at_keyword("until") {
            self.expect_keyword("until");
            true
        } else {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing while or until keyword in do loop.",
            ));
        };
        let cond = self.paren_condition(if until { "until" } else { "while" })?;
        Ok(StatementKind::DoLoop {
            label,
            body,
            cond,
            until,
        })
    }

    fn for_statement(&mut self, label: Option<String>) -> PResult<StatementKind> {
        self.expect_keyword("for");
        self.skip_space_nl()?;
        if !self.eat('(') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing opening '(' after keyword 'for'.",
            ));
        }
        let mut parts: Vec<Option<Statement>> = Vec::new();
        for n in 0..3 {
            self.skip_space_nl()?;
            let part = if matches!(self.peek(), Some(';' | ')')) {
                None
            } else {
                Some(self.statement_for_part()?)
            };
            parts.push(part);
            self.skip_space_nl()?;
            if n < 2 {
                if !self.eat(';') && self.peek() != Some(')') {
                    return Err(self.unexpected());
                }
            } else if !self.eat(')') {
                return Err(self.error(
                    ParseErrorKind::MissingEndParenthesis,
                    "Missing closing ')' after expression in 'for' statement.",
                ));
            }
            if n < 2 && self.peek() == Some(')') {
                // `for (;;)` with fewer parts: the rest are empty.
                self.i += 1;
                while parts.len() < 3 {
                    parts.push(None);
                }
                break;
            }
        }
        let body = self.loop_body("for")?;
        let mut parts = parts.into_iter();
        let init = parts.next().flatten().map(Box::new);
        let cond = match parts.next().flatten() {
            Some(Statement {
                kind: StatementKind::Pipeline(p),
                ..
            }) => Some(p),
            Some(_) => {
                return Err(self.unsupported("An assignment as the condition of a 'for' loop"));
            }
            None => None,
        };
        let step = parts.next().flatten().map(Box::new);
        Ok(StatementKind::For {
            label,
            init,
            cond,
            step,
            body,
        })
    }

    fn statement_for_part(&mut self) -> PResult<Statement> {
        let start = self.i;
        self.nested(|p| p.pipeline_statement(start))
    }

    fn foreach_statement(&mut self, label: Option<String>) -> PResult<StatementKind> {
        self.expect_keyword("foreach");
        self.skip_space_nl()?;
        if !self.eat('(') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing opening '(' after keyword 'foreach'.",
            ));
        }
        self.skip_space_nl()?;
        if self.peek() != Some('$') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing variable name after foreach.",
            ));
        }
        let var = self.variable_path()?;
        if var.qualifier.is_some() {
            return Err(self.unsupported("A scope-qualified foreach variable"));
        }
        self.skip_space_nl()?;
        if !self.at_keyword("in") {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing 'in' after variable in foreach loop.",
            ));
        }
        self.expect_keyword("in");
        self.skip_space_nl()?;
        if self.peek() == Some(')') {
            return Err(self.error(
                ParseErrorKind::ExpectedExpression,
                "Missing expression after 'in' in foreach loop.",
            ));
        }
        let collection = self.pipeline()?;
        self.skip_space_nl()?;
        if !self.eat(')') {
            return Err(self.error(
                ParseErrorKind::MissingEndParenthesis,
                "Missing closing ')' in foreach statement.",
            ));
        }
        let body = self.loop_body("foreach")?;
        Ok(StatementKind::Foreach {
            label,
            variable: var.name,
            collection,
            body,
        })
    }

    fn function_statement(&mut self) -> PResult<StatementKind> {
        let filter = self.at_keyword("filter");
        self.expect_keyword(if filter { "filter" } else { "function" });
        self.skip_space_nl()?;
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| !ends_bareword(c) && c != '(' && c != '{')
        {
            self.i += 1;
        }
        let mut name = self.src.text(Span::new(start, self.i));
        if name.is_empty() {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing name after function keyword.",
            ));
        }
        for scope in ["global:", "script:", "local:"] {
            // `get`, not indexing: the name may hold a multi-byte character where the
            // scope prefix would end.
            if name.len() > scope.len()
                && name
                    .get(..scope.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(scope))
            {
                name = name[scope.len()..].to_owned();
            }
        }
        if name.contains(':') || name.contains('$') {
            return Err(self.unsupported("This function name"));
        }
        self.skip_space_nl()?;
        let mut params = Vec::new();
        if self.eat('(') {
            params = self.param_list()?;
            self.skip_space_nl()?;
        }
        if self.peek() != Some('{') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing function body in function declaration.",
            ));
        }
        let body_start = self.i;
        self.i += 1;
        let mut body = self.nested(|p| p.script_block_body(Terminator::Brace, body_start))?;
        self.i += 1; // the closing brace, checked by script_block_body
        if !params.is_empty() {
            if !body.params.is_empty() {
                return Err(self.error(
                    ParseErrorKind::UnexpectedToken,
                    "A function cannot have both a parameter list and a param block.",
                ));
            }
            body.params = params;
        }
        if filter {
            if body.begin.is_some() || body.process.is_some() {
                return Err(self.unsupported("Named blocks in a filter"));
            }
            body.process = Some(std::mem::take(&mut body.end));
        }
        Ok(StatementKind::Function(Arc::new(FunctionDef {
            name,
            filter,
            body: Arc::new(body),
        })))
    }

    /// The parameters after `param(` or `function f(`, through the closing `)`.
    fn param_list(&mut self) -> PResult<Vec<ParamDecl>> {
        let mut params: Vec<ParamDecl> = Vec::new();
        loop {
            self.skip_space_nl()?;
            if self.eat(')') {
                return Ok(params);
            }
            if !params.is_empty() {
                if !self.eat(',') {
                    return Err(self.error(
                        ParseErrorKind::MissingEndParenthesis,
                        "Missing ')' in function parameter list.",
                    ));
                }
                self.skip_space_nl()?;
            }
            let start = self.i;
            let mut decl = ParamDecl {
                name: String::new(),
                type_name: None,
                mandatory: false,
                from_pipeline: false,
                default: None,
                span: Span::default(),
            };
            while self.peek() == Some('[') {
                self.param_attribute_or_type(&mut decl)?;
                self.skip_space_nl()?;
            }
            if self.peek() != Some('$') {
                return Err(self.error(
                    ParseErrorKind::MissingStatementPart,
                    "Missing parameter variable name.",
                ));
            }
            let var = self.variable_path()?;
            if var.qualifier.is_some() {
                return Err(self.unsupported("A scope-qualified parameter name"));
            }
            if params
                .iter()
                .any(|p| p.name.eq_ignore_ascii_case(&var.name))
            {
                return Err(self.error(
                    ParseErrorKind::UnexpectedToken,
                    format!("Duplicate parameter ${} in parameter list.", var.name),
                ));
            }
            decl.name = var.name;
            self.skip_space_nl()?;
            if self.peek() == Some('=') {
                self.i += 1;
                self.skip_space_nl()?;
                decl.default = Some(self.argument_expression()?);
                self.skip_space_nl()?;
            }
            decl.span = Span::new(start, self.i);
            params.push(decl);
        }
    }

    fn param_attribute_or_type(&mut self, decl: &mut ParamDecl) -> PResult<()> {
        let save = self.i;
        self.i += 1;
        let s = self.i;
        while self.peek().is_some_and(|c| is_name_char(c) || c == '.') {
            self.i += 1;
        }
        let word = self.src.text(Span::new(s, self.i));
        if self.peek() == Some('(') {
            if !word.eq_ignore_ascii_case("Parameter") {
                return Err(self.unsupported(&format!("The attribute [{word}(...)]")));
            }
            self.i += 1;
            loop {
                self.skip_space_nl()?;
                if self.eat(')') {
                    break;
                }
                let s = self.i;
                while self.peek().is_some_and(is_name_char) {
                    self.i += 1;
                }
                let name = self.src.text(Span::new(s, self.i)).to_ascii_lowercase();
                if name.is_empty() {
                    return Err(self.unexpected());
                }
                self.skip_space_nl()?;
                let value = if self.eat('=') {
                    self.skip_space_nl()?;
                    let e = self.unary()?;
                    match &e.kind {
                        ExprKind::Variable(v) if v.name.eq_ignore_ascii_case("true") => true,
                        ExprKind::Variable(v) if v.name.eq_ignore_ascii_case("false") => false,
                        ExprKind::Constant(_) => true,
                        _ => return Err(self.unsupported("A computed attribute argument")),
                    }
                } else {
                    true
                };
                match name.as_str() {
                    "mandatory" => decl.mandatory = value,
                    "valuefrompipeline" => decl.from_pipeline = value,
                    "position"
                    | "helpmessage"
                    | "valuefrompipelinebypropertyname"
                    | "parametersetname" => {}
                    _ => return Err(self.unsupported(&format!("The Parameter argument '{name}'"))),
                }
                self.skip_space_nl()?;
                if !self.eat(',') && self.peek() != Some(')') {
                    return Err(self.unexpected());
                }
            }
            self.skip_space()?;
            if !self.eat(']') {
                return Err(self.error(
                    ParseErrorKind::MissingEndSquareBracket,
                    "Missing ']' after attribute.",
                ));
            }
            return Ok(());
        }
        self.i = save;
        let t = self.type_name()?;
        if decl.type_name.is_some() {
            return Err(self.unsupported("More than one type constraint on a parameter"));
        }
        decl.type_name = Some(t);
        Ok(())
    }

    fn try_statement(&mut self) -> PResult<StatementKind> {
        self.expect_keyword("try");
        self.skip_space_nl()?;
        if self.peek() != Some('{') {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing statement block after 'try'.",
            ));
        }
        let body = self.braced_block()?;
        let mut catches = Vec::new();
        let mut finally = None;
        loop {
            let save = self.i;
            self.skip_space_nl()?;
            if self.at_keyword("catch") {
                self.expect_keyword("catch");
                self.skip_space_nl()?;
                let mut types = Vec::new();
                while self.peek() == Some('[') {
                    types.push(self.type_name()?);
                    self.skip_space_nl()?;
                    if self.eat(',') {
                        self.skip_space_nl()?;
                        if self.peek() != Some('[') {
                            return Err(self.error(
                                ParseErrorKind::MissingStatementPart,
                                "Missing type literal after ',' in catch clause.",
                            ));
                        }
                    }
                }
                if self.peek() != Some('{') {
                    return Err(self.error(
                        ParseErrorKind::MissingStatementPart,
                        "Missing statement block in catch clause.",
                    ));
                }
                let block = self.braced_block()?;
                catches.push(Catch { types, body: block });
            } else if self.at_keyword("finally") {
                self.expect_keyword("finally");
                self.skip_space_nl()?;
                if self.peek() != Some('{') {
                    return Err(self.error(
                        ParseErrorKind::MissingStatementPart,
                        "Missing statement block after 'finally'.",
                    ));
                }
                finally = Some(self.braced_block()?);
                break;
            } else {
                self.i = save;
                break;
            }
        }
        if catches.is_empty() && finally.is_none() {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "The Try statement is missing its Catch or Finally block.",
            ));
        }
        Ok(StatementKind::Try {
            body,
            catches,
            finally,
        })
    }

    // -----------------------------------------------------------------------------------
    // Pipelines and commands.

    /// A pipeline, or an assignment whose target is the first expression.
    fn pipeline_statement(&mut self, start: usize) -> PResult<Statement> {
        if self.starts_expression() {
            let expr = self.expression()?;
            self.skip_space()?;
            if let Some((op, len)) = self.peek_assign_op() {
                if !is_lvalue(&expr) {
                    return Err(self.error(
                        ParseErrorKind::UnexpectedToken,
                        "The assignment expression is not valid. The input to an assignment operator must be an object that is able to accept assignments, such as a variable or a property.",
                    ));
                }
                let op_span = Span::new(self.i, self.i + len);
                self.i += len;
                self.skip_space_nl()?;
                if self.at_statement_end() {
                    return Err(self.error(
                        ParseErrorKind::ExpectedExpression,
                        format!(
                            "You must provide a value expression on the right-hand side of the '{}' operator.",
                            self.src.text(op_span)
                        ),
                    ));
                }
                if let Some(w) = self.peek_word()
                    && STATEMENT_KEYWORDS.contains(&w.as_str())
                    && !matches!(w.as_str(), "begin" | "process" | "end" | "in")
                {
                    return Err(
                        self.unsupported(&format!("Assigning the output of a '{w}' statement"))
                    );
                }
                let rhs_start = self.i;
                let value = self.nested(|p| p.pipeline_statement(rhs_start))?;
                return Ok(Statement {
                    kind: StatementKind::Assign {
                        target: expr,
                        op,
                        value: Box::new(value),
                        op_span,
                    },
                    span: Span::new(start, self.i),
                });
            }
            let pipeline = self.pipeline_rest(start, ElementKind::Expression(expr))?;
            return Ok(Statement {
                kind: StatementKind::Pipeline(pipeline),
                span: Span::new(start, self.i),
            });
        }
        let pipeline = self.pipeline()?;
        Ok(Statement {
            kind: StatementKind::Pipeline(pipeline),
            span: Span::new(start, self.i),
        })
    }

    fn peek_assign_op(&self) -> Option<(AssignOp, usize)> {
        let c = self.peek()?;
        let next = self.peek_at(1);
        match (c, next) {
            ('=', Some('=')) => None,
            ('=', _) => Some((AssignOp::Assign, 1)),
            ('+', Some('=')) => Some((AssignOp::Add, 2)),
            (d, Some('=')) if is_dash(d) => Some((AssignOp::Sub, 2)),
            ('*', Some('=')) => Some((AssignOp::Mul, 2)),
            ('/', Some('=')) => Some((AssignOp::Div, 2)),
            ('%', Some('=')) => Some((AssignOp::Rem, 2)),
            _ => None,
        }
    }

    fn pipeline(&mut self) -> PResult<Pipeline> {
        let start = self.i;
        let first = if self.starts_expression() {
            ElementKind::Expression(self.expression()?)
        } else {
            ElementKind::Command(self.command()?)
        };
        self.pipeline_rest(start, first)
    }

    fn pipeline_rest(&mut self, start: usize, first: ElementKind) -> PResult<Pipeline> {
        let mut elements = Vec::new();
        let mut kind = first;
        loop {
            let redirections = self.redirections()?;
            elements.push(PipelineElement { kind, redirections });
            self.skip_space()?;
            if self.peek() != Some('|') {
                break;
            }
            if self.peek_at(1) == Some('|') {
                return Err(self.unsupported("The '||' operator"));
            }
            self.i += 1;
            self.skip_space_nl()?;
            if self.at_end() || self.at_statement_end() || self.peek() == Some('|') {
                return Err(self.error(
                    ParseErrorKind::ExpectedExpression,
                    "An empty pipe element is not allowed.",
                ));
            }
            if self.starts_expression() && !self.starts_command_call() {
                return Err(self.error(
                    ParseErrorKind::UnexpectedToken,
                    "Expressions are only allowed as the first element of a pipeline.",
                ));
            }
            kind = ElementKind::Command(self.command()?);
        }
        Ok(Pipeline {
            elements,
            span: Span::new(start, self.i),
        })
    }

    fn starts_command_call(&self) -> bool {
        self.peek() == Some('&') || self.is_dot_source()
    }

    fn is_dot_source(&self) -> bool {
        self.peek() == Some('.')
            && self.peek_at(1).is_some_and(|c| {
                is_space(c)
                    || matches!(c, '{' | '(' | '$' | '&')
                    || is_single_quote(c)
                    || is_double_quote(c)
            })
    }

    /// Whether the cursor starts an expression rather than a command.
    fn starts_expression(&self) -> bool {
        let Some(c) = self.peek() else { return false };
        match c {
            '$' | '(' | '{' | '[' | ',' | '!' | '@' => true,
            c if is_single_quote(c) || is_double_quote(c) => true,
            '+' => true,
            c if is_dash(c) => true,
            '.' => self.peek_at(1).is_some_and(|d| d.is_ascii_digit()),
            c if c.is_ascii_digit() => self.number_at(self.i, false).is_some_and(|(_, end)| {
                self.src
                    .chars()
                    .get(end)
                    .is_none_or(|&n| !is_name_char(n) && n != '\\' && n != '.')
                    || self.src.chars().get(end) == Some(&'.')
                        && self.src.chars().get(end + 1) == Some(&'.')
            }),
            _ => false,
        }
    }

    fn redirections(&mut self) -> PResult<Vec<Redirection>> {
        let mut out = Vec::new();
        loop {
            self.skip_space()?;
            if let Some(r) = self.redirection()? {
                out.push(r);
            } else {
                return Ok(out);
            }
        }
    }

    /// A redirection at the cursor, if there is one.
    fn redirection(&mut self) -> PResult<Option<Redirection>> {
        let (stream, len) = match (self.peek(), self.peek_at(1)) {
            (Some('>'), _) => ('1', 1),
            (Some(d @ ('1'..='6' | '*')), Some('>')) => (d, 2),
            (Some('<'), _) if self.peek_at(1) != Some('#') => {
                return Err(self.error(
                    ParseErrorKind::Unsupported,
                    "The '<' operator is reserved for future use.",
                ));
            }
            _ => return Ok(None),
        };
        let start = self.i;
        self.i += len;
        if self.peek() == Some('>') {
            return Err(self.unsupported("Appending redirection ('>>')"));
        }
        if stream == '2' && self.peek() == Some('&') && self.peek_at(1) == Some('1') {
            self.i += 2;
            return Ok(Some(Redirection::ErrorToOutput));
        }
        self.skip_space()?;
        let chars = self.src.chars();
        let target: String = chars[self.i.min(chars.len())..(self.i + 5).min(chars.len())]
            .iter()
            .collect();
        let ends = chars.get(self.i + 5).is_none_or(|&c| !is_name_char(c));
        if target.eq_ignore_ascii_case("$null") && ends {
            self.i += 5;
            return Ok(Some(match stream {
                '1' => Redirection::OutputToNull,
                '2' => Redirection::ErrorToNull,
                _ => {
                    self.i = start;
                    return Err(self.unsupported("Redirecting this stream"));
                }
            }));
        }
        self.i = start;
        Err(self.unsupported("Redirection to a file"))
    }

    fn command(&mut self) -> PResult<Command> {
        let start = self.i;
        let mut dot_source = false;
        let target;
        let name_span;
        if self.peek() == Some('&') || self.is_dot_source() {
            if self.peek() == Some('&') && self.peek_at(1) == Some('&') {
                return Err(self.unsupported("The '&&' operator"));
            }
            dot_source = self.peek() == Some('.');
            self.i += 1;
            self.skip_space()?;
            let s = self.i;
            let expr = if self.peek().is_some_and(|c| {
                matches!(c, '$' | '(' | '{' | '@') || is_single_quote(c) || is_double_quote(c)
            }) {
                self.postfix_primary(true)?
            } else {
                let word = self.bareword()?;
                if word.is_empty() {
                    return Err(self.error(
                        ParseErrorKind::ExpectedExpression,
                        "Missing expression after '&' in pipeline element.",
                    ));
                }
                Expr {
                    kind: ExprKind::Constant(Constant::Str(Arc::from(word.as_str()))),
                    span: Span::new(s, self.i),
                }
            };
            name_span = Span::new(s, self.i);
            target = CommandTarget::Expression(Box::new(expr));
        } else {
            let s = self.i;
            let name = self.bareword()?;
            if name.is_empty() {
                return Err(self.unexpected());
            }
            name_span = Span::new(s, self.i);
            target = CommandTarget::Name(name);
        }
        let mut elements = Vec::new();
        loop {
            self.skip_space()?;
            match self.peek() {
                None | Some('\n' | '\r' | ';' | '|' | ')' | '}') => break,
                Some('>') => break,
                Some(d @ ('1'..='6' | '*')) if self.peek_at(1) == Some('>') => {
                    let _ = d;
                    break;
                }
                Some('&') => {
                    return Err(self.unsupported("The '&' operator after a command"));
                }
                Some(c) if is_dash(c) && self.is_parameter_token() => {
                    let s = self.i;
                    self.i += 1;
                    while self.peek().is_some_and(|c| {
                        !c.is_whitespace()
                            && !matches!(c, ':' | ',' | ';' | '|' | '(' | ')' | '{' | '}' | '&')
                            && !is_single_quote(c)
                            && !is_double_quote(c)
                    }) {
                        self.i += 1;
                    }
                    let name = self.src.text(Span::new(s + 1, self.i));
                    let span = Span::new(s, self.i);
                    let argument = if self.eat(':') {
                        self.skip_space()?;
                        if self.at_statement_end() || self.peek() == Some('|') {
                            return Err(self.error(
                                ParseErrorKind::ExpectedExpression,
                                format!("Missing an argument for parameter '{name}'."),
                            ));
                        }
                        Some(self.command_argument()?)
                    } else {
                        None
                    };
                    elements.push(CommandElement::Parameter {
                        name,
                        argument,
                        span,
                    });
                }
                Some('@') if self.peek_at(1).is_some_and(is_name_char) => {
                    let s = self.i;
                    self.i += 1;
                    while self.peek().is_some_and(is_name_char) {
                        self.i += 1;
                    }
                    let name = self.src.text(Span::new(s + 1, self.i));
                    if self.peek().is_some_and(|c| !ends_bareword(c)) {
                        return Err(self.unexpected());
                    }
                    elements.push(CommandElement::Splat {
                        name,
                        span: Span::new(s, self.i),
                    });
                }
                Some(_) => {
                    let arg = self.command_argument()?;
                    elements.push(CommandElement::Argument(arg));
                }
            }
        }
        Ok(Command {
            target,
            dot_source,
            elements,
            name_span,
            span: Span::new(start, self.i),
        })
    }

    /// Whether a dash at the cursor starts a parameter token (`-Name`) rather than a
    /// negative number or a lone dash.
    fn is_parameter_token(&self) -> bool {
        matches!(self.peek_at(1), Some(c) if c.is_alphabetic() || c == '_' || c == '?')
    }

    /// An argument with optional `,`-separated further values.
    fn command_argument(&mut self) -> PResult<Expr> {
        let start = self.i;
        let first = self.argument_value()?;
        self.skip_space()?;
        if self.peek() != Some(',') {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(',') {
            self.skip_space_nl()?;
            if self.at_statement_end() || self.peek() == Some('|') {
                return Err(self.error(
                    ParseErrorKind::ExpectedExpression,
                    "Missing expression after ','.",
                ));
            }
            items.push(self.argument_value()?);
            self.skip_space()?;
        }
        Ok(Expr {
            kind: ExprKind::ArrayLiteral(items),
            span: Span::new(start, self.i),
        })
    }

    /// One argument value in argument mode.
    fn argument_value(&mut self) -> PResult<Expr> {
        let start = self.i;
        let Some(c) = self.peek() else {
            return Err(self.unexpected());
        };
        let expr = if matches!(c, '$' | '(' | '@' | '{') || is_single_quote(c) || is_double_quote(c)
        {
            if c == '@'
                && !matches!(self.peek_at(1), Some('(' | '{'))
                && !self
                    .peek_at(1)
                    .is_some_and(|q| is_single_quote(q) || is_double_quote(q))
            {
                self.bareword_expr()?
            } else {
                self.postfix_primary(true)?
            }
        } else if let Some((constant, end)) = self.number_at(self.i, true)
            && self.src.chars().get(end).is_none_or(|&n| ends_bareword(n))
        {
            self.i = end;
            Expr {
                kind: ExprKind::Constant(constant),
                span: Span::new(start, end),
            }
        } else {
            self.bareword_expr()?
        };
        if self.peek().is_some_and(|n| !ends_bareword(n)) {
            return Err(self.unsupported(&format!(
                "The composite argument '{}'",
                self.token_text_at(start)
            )));
        }
        Ok(expr)
    }

    fn bareword_expr(&mut self) -> PResult<Expr> {
        let start = self.i;
        let word = self.bareword()?;
        if word.is_empty() {
            return Err(self.unexpected());
        }
        Ok(Expr {
            kind: ExprKind::Constant(Constant::Str(Arc::from(word.as_str()))),
            span: Span::new(start, self.i),
        })
    }

    /// A generic token (command name or bareword argument), backtick escapes applied.
    fn bareword(&mut self) -> PResult<String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if ends_bareword(c) {
                break;
            }
            if c == '`' {
                match self.peek_at(1) {
                    None => {
                        self.i += 1;
                        break;
                    }
                    Some(n) if is_newline(n) => break,
                    Some(n) => {
                        out.push(escape_char(n));
                        self.i += 2;
                        continue;
                    }
                }
            }
            if c == '$'
                && !out.is_empty()
                && self
                    .peek_at(1)
                    .is_some_and(|n| is_name_char(n) || matches!(n, '(' | '{'))
            {
                return Err(self.unsupported("A variable inside a bareword argument"));
            }
            out.push(c);
            self.i += 1;
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------
    // Expressions.

    fn expression(&mut self) -> PResult<Expr> {
        self.nested(Parser::logical)
    }

    /// The dash operator at the cursor (after spaces), lower-cased without the dash, and its
    /// length in characters.
    fn peek_dash_op(&self) -> Option<(String, usize)> {
        if !self.peek().is_some_and(is_dash) {
            return None;
        }
        let chars = self.src.chars();
        let mut j = self.i + 1;
        while chars.get(j).is_some_and(|c| c.is_ascii_alphabetic()) {
            j += 1;
        }
        if j == self.i + 1 {
            return None;
        }
        let word: String = chars[self.i + 1..j]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        Some((word, j - self.i))
    }

    fn binary_level(
        &mut self,
        next: fn(&mut Parser) -> PResult<Expr>,
        op_of: fn(&Parser) -> Option<(BinaryOp, usize)>,
    ) -> PResult<Expr> {
        let mut left = next(self)?;
        loop {
            let save = self.i;
            self.skip_space()?;
            if let Some(e) = self.powershell_3_in() {
                return Err(e);
            }
            let Some((op, len)) = op_of(self) else {
                self.i = save;
                return Ok(left);
            };
            let op_span = Span::new(self.i, self.i + len);
            self.i += len;
            self.skip_space_nl()?;
            if self.at_end() || self.at_statement_end() || matches!(self.peek(), Some('|' | ']')) {
                return Err(self.error_at(
                    op_span.end as usize,
                    ParseErrorKind::ExpectedExpression,
                    format!(
                        "You must provide a value expression on the right-hand side of the '{}' operator.",
                        self.src.text(op_span)
                    ),
                ));
            }
            let right = next(self)?;
            let span = Span::new(left.span.start as usize, right.span.end as usize);
            left = Expr {
                kind: ExprKind::Binary(op, Box::new(left), Box::new(right), op_span),
                span,
            };
        }
    }

    fn logical(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::bitwise, |p| {
            let (w, len) = p.peek_dash_op()?;
            let op = match w.as_str() {
                "and" => BinaryOp::And,
                "or" => BinaryOp::Or,
                "xor" => BinaryOp::Xor,
                _ => return None,
            };
            Some((op, len))
        })
    }

    fn bitwise(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::comparison, |p| {
            let (w, len) = p.peek_dash_op()?;
            let op = match w.as_str() {
                "band" => BinaryOp::BitAnd,
                "bor" => BinaryOp::BitOr,
                "bxor" => BinaryOp::BitXor,
                _ => return None,
            };
            Some((op, len))
        })
    }

    fn comparison(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::additive, |p| {
            let (w, len) = p.peek_dash_op()?;
            Some((comparison_op(&w)?, len))
        })
    }

    fn additive(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::multiplicative, |p| match p.peek() {
            Some('+') if !matches!(p.peek_at(1), Some('+' | '=')) => Some((BinaryOp::Add, 1)),
            Some(c) if is_dash(c) => match p.peek_at(1) {
                Some(n) if n.is_alphabetic() || is_dash(n) || n == '=' => None,
                _ => Some((BinaryOp::Sub, 1)),
            },
            _ => None,
        })
    }

    fn multiplicative(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::format_level, |p| {
            if p.peek_at(1) == Some('=') {
                return None;
            }
            match p.peek() {
                Some('*') => Some((BinaryOp::Mul, 1)),
                Some('/') => Some((BinaryOp::Div, 1)),
                Some('%') => Some((BinaryOp::Rem, 1)),
                _ => None,
            }
        })
    }

    fn format_level(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::range, |p| {
            let (w, len) = p.peek_dash_op()?;
            (w == "f").then_some((BinaryOp::Format, len))
        })
    }

    fn range(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::array_literal, |p| {
            (p.peek() == Some('.') && p.peek_at(1) == Some('.')).then_some((BinaryOp::Range, 2))
        })
    }

    fn array_literal(&mut self) -> PResult<Expr> {
        let start = self.i;
        let first = self.unary()?;
        let save = self.i;
        self.skip_space()?;
        if self.peek() != Some(',') {
            self.i = save;
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(',') {
            self.skip_space_nl()?;
            if self.at_end() || self.at_statement_end() || self.peek() == Some('|') {
                return Err(self.error(
                    ParseErrorKind::ExpectedExpression,
                    "Missing expression after ','.",
                ));
            }
            items.push(self.unary()?);
            let save = self.i;
            self.skip_space()?;
            if self.peek() != Some(',') {
                self.i = save;
                break;
            }
        }
        Ok(Expr {
            kind: ExprKind::ArrayLiteral(items),
            span: Span::new(start, self.i),
        })
    }

    fn unary(&mut self) -> PResult<Expr> {
        self.nested(Parser::unary_inner)
    }

    fn unary_operand(&mut self, start: usize, op: UnaryOp, len: usize) -> PResult<Expr> {
        let op_end = self.i + len;
        self.i = op_end;
        self.skip_space()?;
        if self.at_end() || self.at_statement_end() || matches!(self.peek(), Some('|' | ',')) {
            return Err(self.error_at(
                op_end,
                ParseErrorKind::ExpectedExpression,
                format!(
                    "Missing expression after unary operator '{}'.",
                    self.src.text(Span::new(start, op_end))
                ),
            ));
        }
        let operand = self.unary()?;
        Ok(Expr {
            span: Span::new(start, operand.span.end as usize),
            kind: ExprKind::Unary(op, Box::new(operand)),
        })
    }

    fn unary_inner(&mut self) -> PResult<Expr> {
        let start = self.i;
        let Some(c) = self.peek() else {
            return Err(self.error(ParseErrorKind::ExpectedExpression, "Expression expected."));
        };
        match c {
            '!' => self.unary_operand(start, UnaryOp::Not, 1),
            '+' if self.peek_at(1) == Some('+') => {
                self.unary_operand(start, UnaryOp::PreIncrement, 2)
            }
            '+' => self.unary_operand(start, UnaryOp::Plus, 1),
            ',' => {
                self.i += 1;
                self.skip_space_nl()?;
                let operand = self.unary()?;
                Ok(Expr {
                    span: Span::new(start, operand.span.end as usize),
                    kind: ExprKind::UnaryComma(Box::new(operand)),
                })
            }
            c if is_dash(c) => {
                if self.peek_at(1).is_some_and(is_dash) {
                    return self.unary_operand(start, UnaryOp::PreDecrement, 2);
                }
                if let Some((w, len)) = self.peek_dash_op() {
                    let op = match w.as_str() {
                        "not" => UnaryOp::Not,
                        "bnot" => UnaryOp::BitNot,
                        "split" => UnaryOp::Split,
                        "join" => UnaryOp::Join,
                        _ => return Err(self.unexpected()),
                    };
                    return self.unary_operand(start, op, len);
                }
                if let Some((constant, end)) = self.number_at(self.i, true) {
                    if self.src.chars().get(end).is_some_and(|&n| is_name_char(n)) {
                        return Err(self.unexpected());
                    }
                    self.i = end;
                    let e = Expr {
                        kind: ExprKind::Constant(constant),
                        span: Span::new(start, end),
                    };
                    return self.postfix(e);
                }
                self.unary_operand(start, UnaryOp::Negate, 1)
            }
            '[' => {
                let t = self.type_name()?;
                if self.peek() == Some(':') && self.peek_at(1) == Some(':') {
                    let e = Expr {
                        span: t.span,
                        kind: ExprKind::TypeLiteral(t),
                    };
                    return self.postfix(e);
                }
                let save = self.i;
                self.skip_space()?;
                if self.starts_unary_operand() {
                    let operand = self.unary()?;
                    return Ok(Expr {
                        span: Span::new(start, operand.span.end as usize),
                        kind: ExprKind::Cast(t, Box::new(operand)),
                    });
                }
                self.i = save;
                Ok(Expr {
                    span: t.span,
                    kind: ExprKind::TypeLiteral(t),
                })
            }
            _ => {
                let e = self.postfix_primary(false)?;
                // Postfix ++ and -- directly after an operand.
                if self.peek() == Some('+') && self.peek_at(1) == Some('+') {
                    self.i += 2;
                    return Ok(Expr {
                        span: Span::new(start, self.i),
                        kind: ExprKind::Unary(UnaryOp::PostIncrement, Box::new(e)),
                    });
                }
                if self.peek().is_some_and(is_dash) && self.peek_at(1).is_some_and(is_dash) {
                    self.i += 2;
                    return Ok(Expr {
                        span: Span::new(start, self.i),
                        kind: ExprKind::Unary(UnaryOp::PostDecrement, Box::new(e)),
                    });
                }
                Ok(e)
            }
        }
    }

    /// After a type literal: whether a cast operand follows.
    fn starts_unary_operand(&self) -> bool {
        match self.peek() {
            Some('$' | '(' | '@' | '[' | '!' | '{') => true,
            Some(c) if is_single_quote(c) || is_double_quote(c) || c.is_ascii_digit() => true,
            Some(c) if is_dash(c) => match self.peek_at(1) {
                Some(n) if n.is_ascii_digit() || n == '$' || n == '(' => true,
                _ => self
                    .peek_dash_op()
                    .is_some_and(|(w, _)| matches!(w.as_str(), "not" | "bnot" | "split" | "join")),
            },
            _ => false,
        }
    }

    fn type_name(&mut self) -> PResult<TypeName> {
        let start = self.i;
        self.i += 1; // '['
        self.skip_space()?;
        let s = self.i;
        while self
            .peek()
            .is_some_and(|c| is_name_char(c) || c == '.' || c == '`')
        {
            self.i += 1;
        }
        let mut name = self.src.text(Span::new(s, self.i));
        if name.is_empty() {
            return Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing type name after '['.",
            ));
        }
        while self.peek() == Some('[') {
            if self.peek_at(1) == Some(']') {
                self.i += 2;
                name.push_str("[]");
            } else {
                return Err(self.unsupported("A generic type name"));
            }
        }
        self.skip_space()?;
        if !self.eat(']') {
            return Err(self.error(
                ParseErrorKind::MissingEndSquareBracket,
                "Unable to find type [; missing closing ']'.",
            ));
        }
        Ok(TypeName {
            name,
            span: Span::new(start, self.i),
        })
    }

    fn postfix_primary(&mut self, argument_mode: bool) -> PResult<Expr> {
        let e = self.primary(argument_mode)?;
        self.postfix(e)
    }

    /// Member access, method calls and indexing directly after an operand.
    fn postfix(&mut self, mut e: Expr) -> PResult<Expr> {
        let start = e.span.start as usize;
        loop {
            let is_static = self.peek() == Some(':') && self.peek_at(1) == Some(':');
            let is_member = self.peek() == Some('.')
                && self.peek_at(1).is_some_and(|c| {
                    c != '.'
                        && (is_name_char(c) || c == '$' || is_single_quote(c) || is_double_quote(c))
                });
            if is_static || is_member {
                if is_static && !matches!(e.kind, ExprKind::TypeLiteral(_)) {
                    return Err(self.unsupported("Static member access on a value"));
                }
                self.i += if is_static { 2 } else { 1 };
                let name = self.member_name()?;
                if self.peek() == Some('(') {
                    self.i += 1;
                    let args = self.method_args()?;
                    e = Expr {
                        span: Span::new(start, self.i),
                        kind: ExprKind::MethodCall {
                            target: Box::new(e),
                            name: Box::new(name),
                            args,
                            is_static,
                        },
                    };
                } else {
                    e = Expr {
                        span: Span::new(start, self.i),
                        kind: ExprKind::Member {
                            target: Box::new(e),
                            name: Box::new(name),
                            is_static,
                        },
                    };
                }
                continue;
            }
            if self.peek() == Some('[') {
                if matches!(e.kind, ExprKind::TypeLiteral(_)) {
                    return Ok(e);
                }
                let open = self.i;
                self.i += 1;
                self.skip_space_nl()?;
                let index = self.expression()?;
                self.skip_space_nl()?;
                if !self.eat(']') {
                    return Err(self.error_at(
                        open + 1,
                        ParseErrorKind::MissingEndSquareBracket,
                        "Array index expression is missing or not valid.",
                    ));
                }
                e = Expr {
                    span: Span::new(start, self.i),
                    kind: ExprKind::Index {
                        target: Box::new(e),
                        index: Box::new(index),
                    },
                };
                continue;
            }
            return Ok(e);
        }
    }

    fn member_name(&mut self) -> PResult<Expr> {
        let start = self.i;
        match self.peek() {
            Some('$') => self.primary(false),
            Some(c) if is_single_quote(c) || is_double_quote(c) => self.primary(false),
            Some(c) if is_name_char(c) => {
                while self.peek().is_some_and(is_name_char) {
                    self.i += 1;
                }
                let name = self.src.text(Span::new(start, self.i));
                Ok(Expr {
                    kind: ExprKind::Constant(Constant::Str(Arc::from(name.as_str()))),
                    span: Span::new(start, self.i),
                })
            }
            _ => Err(self.error(
                ParseErrorKind::MissingStatementPart,
                "Missing property name after reference operator.",
            )),
        }
    }

    fn method_args(&mut self) -> PResult<Vec<Expr>> {
        let mut args = Vec::new();
        self.skip_space_nl()?;
        if self.eat(')') {
            return Ok(args);
        }
        loop {
            self.skip_space_nl()?;
            if matches!(self.peek(), Some(',' | ')')) {
                return Err(self.error(
                    ParseErrorKind::ExpectedExpression,
                    "Missing argument in parameter list.",
                ));
            }
            // Each argument is an expression without a top-level comma.
            let arg = self.argument_expression()?;
            args.push(arg);
            self.skip_space_nl()?;
            if self.eat(',') {
                continue;
            }
            if self.eat(')') {
                return Ok(args);
            }
            if self.at_end() {
                return Err(self.error(
                    ParseErrorKind::MissingEndParenthesis,
                    "Missing ')' in method call.",
                ));
            }
            return Err(self.unexpected());
        }
    }

    /// An expression without a top-level comma (method arguments, parameter defaults).
    fn argument_expression(&mut self) -> PResult<Expr> {
        self.nested(|p| {
            p.binary_level(Parser::method_arg_bitwise, |p| {
                let (w, len) = p.peek_dash_op()?;
                let op = match w.as_str() {
                    "and" => BinaryOp::And,
                    "or" => BinaryOp::Or,
                    "xor" => BinaryOp::Xor,
                    _ => return None,
                };
                Some((op, len))
            })
        })
    }

    fn method_arg_bitwise(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::method_arg_comparison, |p| {
            let (w, len) = p.peek_dash_op()?;
            let op = match w.as_str() {
                "band" => BinaryOp::BitAnd,
                "bor" => BinaryOp::BitOr,
                "bxor" => BinaryOp::BitXor,
                _ => return None,
            };
            Some((op, len))
        })
    }

    fn method_arg_comparison(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::method_arg_additive, |p| {
            let (w, len) = p.peek_dash_op()?;
            Some((comparison_op(&w)?, len))
        })
    }

    fn method_arg_additive(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::method_arg_multiplicative, |p| match p.peek() {
            Some('+') if !matches!(p.peek_at(1), Some('+' | '=')) => Some((BinaryOp::Add, 1)),
            Some(c) if is_dash(c) => match p.peek_at(1) {
                Some(n) if n.is_alphabetic() || is_dash(n) || n == '=' => None,
                _ => Some((BinaryOp::Sub, 1)),
            },
            _ => None,
        })
    }

    fn method_arg_multiplicative(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::method_arg_format, |p| {
            if p.peek_at(1) == Some('=') {
                return None;
            }
            match p.peek() {
                Some('*') => Some((BinaryOp::Mul, 1)),
                Some('/') => Some((BinaryOp::Div, 1)),
                Some('%') => Some((BinaryOp::Rem, 1)),
                _ => None,
            }
        })
    }

    fn method_arg_format(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::method_arg_range, |p| {
            let (w, len) = p.peek_dash_op()?;
            (w == "f").then_some((BinaryOp::Format, len))
        })
    }

    fn method_arg_range(&mut self) -> PResult<Expr> {
        self.binary_level(Parser::unary, |p| {
            (p.peek() == Some('.') && p.peek_at(1) == Some('.')).then_some((BinaryOp::Range, 2))
        })
    }

    fn primary(&mut self, argument_mode: bool) -> PResult<Expr> {
        let start = self.i;
        let Some(c) = self.peek() else {
            return Err(self.error(ParseErrorKind::ExpectedExpression, "Expression expected."));
        };
        let kind = match c {
            '$' if self.peek_at(1) == Some('(') => {
                self.i += 2;
                let block = self.paren_block("subexpression")?;
                ExprKind::SubExpression(block)
            }
            '$' => ExprKind::Variable(self.variable_path()?),
            '@' => match self.peek_at(1) {
                Some('(') => {
                    self.i += 2;
                    ExprKind::ArraySubExpression(self.paren_block("array subexpression")?)
                }
                Some('{') => {
                    self.i += 2;
                    self.hashtable()?
                }
                Some(q) if is_single_quote(q) => {
                    self.i += 1;
                    let text = self.here_string(false)?;
                    match text {
                        HereString::Verbatim(s) => {
                            ExprKind::Constant(Constant::Str(Arc::from(s.as_str())))
                        }
                        HereString::Expandable(parts) => ExprKind::Expandable(parts),
                    }
                }
                Some(q) if is_double_quote(q) => {
                    self.i += 1;
                    match self.here_string(true)? {
                        HereString::Verbatim(s) => {
                            ExprKind::Constant(Constant::Str(Arc::from(s.as_str())))
                        }
                        HereString::Expandable(parts) => ExprKind::Expandable(parts),
                    }
                }
                _ => {
                    return Err(self.error(
                        ParseErrorKind::UnexpectedToken,
                        "The splatting operator '@' cannot be used to reference variables in an expression.",
                    ));
                }
            },
            '(' => {
                self.i += 1;
                let inner = self.nested(|p| {
                    p.skip_space_nl()?;
                    if p.peek() == Some(')') {
                        return Err(p.error(
                            ParseErrorKind::ExpectedExpression,
                            "An expression was expected after '('.",
                        ));
                    }
                    let s = p.i;
                    let statement = p.pipeline_statement(s)?;
                    p.skip_space_nl()?;
                    if !p.eat(')') {
                        return Err(p.error(
                            ParseErrorKind::MissingEndParenthesis,
                            "Missing closing ')' in expression.",
                        ));
                    }
                    Ok(statement)
                })?;
                ExprKind::Paren(Box::new(inner))
            }
            '{' => {
                self.i += 1;
                let body = self.nested(|p| p.script_block_body(Terminator::Brace, start))?;
                self.i += 1;
                ExprKind::ScriptBlock(Arc::new(body))
            }
            c if is_single_quote(c) => {
                ExprKind::Constant(Constant::Str(Arc::from(self.single_quoted()?.as_str())))
            }
            c if is_double_quote(c) => {
                self.i += 1;
                let parts = self.expandable(StringEnd::Quote)?;
                ExprKind::Expandable(parts)
            }
            c if c.is_ascii_digit()
                || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                match self.number_at(self.i, false) {
                    Some((constant, end))
                        if argument_mode
                            || self.src.chars().get(end).is_none_or(|&n| !is_name_char(n)) =>
                    {
                        self.i = end;
                        ExprKind::Constant(constant)
                    }
                    _ => return Err(self.bad_number()),
                }
            }
            _ => return Err(self.unexpected()),
        };
        Ok(Expr {
            kind,
            span: Span::new(start, self.i),
        })
    }

    fn bad_number(&self) -> ParseError {
        let token = self.token_text_at(self.i);
        self.error_at(
            self.i + token.chars().count(),
            ParseErrorKind::BadNumericConstant,
            format!("Bad numeric constant: {token}."),
        )
    }

    /// The statements of `$( ... )` or `@( ... )`, through the `)`.
    fn paren_block(&mut self, what: &str) -> PResult<Block> {
        self.nested(|p| {
            let block = p.statement_list(Terminator::Paren)?;
            p.skip_space_nl()?;
            if !p.eat(')') {
                return Err(p.error(
                    ParseErrorKind::MissingEndParenthesis,
                    format!("Missing closing ')' in {what}."),
                ));
            }
            Ok(block)
        })
    }

    fn hashtable(&mut self) -> PResult<ExprKind> {
        self.nested(|p| {
            let mut entries: Vec<(Expr, Statement)> = Vec::new();
            let mut seen: Vec<String> = Vec::new();
            loop {
                loop {
                    p.skip_space_nl()?;
                    if !p.eat(';') {
                        break;
                    }
                }
                if p.eat('}') {
                    return Ok(ExprKind::Hashtable(entries));
                }
                if p.at_end() {
                    return Err(p.error(
                        ParseErrorKind::MissingEndCurlyBrace,
                        "Missing closing '}' in hash literal.",
                    ));
                }
                let key_start = p.i;
                let key = match p.peek() {
                    Some(c) if c.is_alphabetic() || c == '_' => {
                        while p
                            .peek()
                            .is_some_and(|c| is_name_char(c) || c == '-' || c == '.')
                        {
                            p.i += 1;
                        }
                        let name = p.src.text(Span::new(key_start, p.i));
                        Expr {
                            kind: ExprKind::Constant(Constant::Str(Arc::from(name.as_str()))),
                            span: Span::new(key_start, p.i),
                        }
                    }
                    _ => p.unary()?,
                };
                let key_text = match &key.kind {
                    ExprKind::Constant(Constant::Str(s)) => Some(s.to_lowercase()),
                    ExprKind::Constant(Constant::Int(i)) => Some(format!("#int{i}")),
                    ExprKind::Constant(Constant::Long(i)) => Some(format!("#long{i}")),
                    _ => None,
                };
                if let Some(k) = key_text {
                    if seen.contains(&k) {
                        return Err(p.error_at(
                            key_start,
                            ParseErrorKind::DuplicateKeyInHashLiteral,
                            format!(
                                "Duplicate keys '{}' are not allowed in hash literals.",
                                p.src
                                    .text(key.span)
                                    .trim_matches(|c| is_single_quote(c) || is_double_quote(c))
                            ),
                        ));
                    }
                    seen.push(k);
                }
                p.skip_space()?;
                if p.peek() != Some('=') || p.peek_at(1) == Some('=') {
                    return Err(p.error(
                        ParseErrorKind::InvalidHashLiteral,
                        "Missing '=' operator after key in hash literal.",
                    ));
                }
                p.i += 1;
                p.skip_space_nl()?;
                if p.at_statement_end() {
                    return Err(p.error(
                        ParseErrorKind::InvalidHashLiteral,
                        "Missing statement after '=' in hash literal.",
                    ));
                }
                let s = p.i;
                let value = p.pipeline_statement(s)?;
                entries.push((key, value));
                p.skip_space()?;
                match p.peek() {
                    Some(';' | '\n' | '\r' | '}') => {}
                    None => {
                        return Err(p.error(
                            ParseErrorKind::MissingEndCurlyBrace,
                            "Missing closing '}' in hash literal.",
                        ));
                    }
                    _ => {
                        return Err(p.error(
                            ParseErrorKind::InvalidHashLiteral,
                            "The hash literal was incomplete.",
                        ));
                    }
                }
            }
        })
    }

    // -----------------------------------------------------------------------------------
    // Variables, strings and numbers.

    /// `$name`, `${name}`, `$scope:name`, `$_`, `$?`, `$$`, `$^`; the cursor is on `$`.
    fn variable_path(&mut self) -> PResult<VariablePath> {
        let start = self.i;
        self.i += 1;
        let raw = match self.peek() {
            Some('{') => {
                self.i += 1;
                let mut name = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return Err(self.error_at(
                                start,
                                ParseErrorKind::InvalidVariableReference,
                                "Missing '}' at end of variable name.",
                            ));
                        }
                        Some('}') => {
                            self.i += 1;
                            break;
                        }
                        Some('`') if self.peek_at(1).is_some() => {
                            name.extend(self.peek_at(1));
                            self.i += 2;
                        }
                        Some(c) => {
                            name.push(c);
                            self.i += 1;
                        }
                    }
                }
                if name.is_empty() {
                    return Err(self.error_at(
                        start,
                        ParseErrorKind::InvalidVariableReference,
                        "Empty variable name.",
                    ));
                }
                name
            }
            Some(c @ ('$' | '?' | '^')) => {
                self.i += 1;
                c.to_string()
            }
            Some(c) if is_name_char(c) => {
                let s = self.i;
                while let Some(c) = self.peek() {
                    let qualifier = c == ':'
                        && self.peek_at(1).is_some_and(is_name_char)
                        && !self.src.text(Span::new(s, self.i)).contains(':');
                    if is_name_char(c) || qualifier {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                self.src.text(Span::new(s, self.i))
            }
            _ => {
                return Err(self.error_at(
                    start + 1,
                    ParseErrorKind::InvalidVariableReference,
                    "Variable reference is not valid. '$' was not followed by a valid variable name character. Consider using ${} to delimit the name.",
                ));
            }
        };
        split_variable(&raw).ok_or_else(|| {
            self.error_at(
                start,
                ParseErrorKind::Unsupported,
                format!("The variable reference '${raw}' (a provider drive) is not supported by this PowerShell interpreter."),
            )
        })
    }

    fn single_quoted(&mut self) -> PResult<String> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        start,
                        ParseErrorKind::TerminatorExpectedAtEndOfString,
                        "The string is missing the terminator: '.",
                    ));
                }
                Some(c) if is_single_quote(c) => match self.peek_at(1) {
                    Some(n) if is_single_quote(n) => {
                        out.push(n);
                        self.i += 2;
                    }
                    _ => {
                        self.i += 1;
                        return Ok(out);
                    }
                },
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// A here-string; the cursor is on the quote after `@`.
    fn here_string(&mut self, expandable: bool) -> PResult<HereString> {
        let start = self.i - 1;
        self.i += 1;
        while self.peek().is_some_and(is_space) {
            self.i += 1;
        }
        if self.eat('\r') {
            self.eat('\n');
        } else if !self.eat('\n') {
            return Err(self.error(
                ParseErrorKind::UnexpectedToken,
                "Unrecognized token in source text: a here-string header must be followed by a line break.",
            ));
        }
        if expandable {
            let parts = self.expandable(StringEnd::HereString)?;
            return Ok(HereString::Expandable(parts));
        }
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        start,
                        ParseErrorKind::TerminatorExpectedAtEndOfString,
                        "The string is missing the terminator: '@.",
                    ));
                }
                Some(c)
                    if is_single_quote(c)
                        && self.peek_at(1) == Some('@')
                        && self.at_line_start() =>
                {
                    self.i += 2;
                    strip_final_newline(&mut out);
                    return Ok(HereString::Verbatim(out));
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn at_line_start(&self) -> bool {
        self.i > 0 && self.src.chars().get(self.i - 1) == Some(&'\n')
    }

    /// The contents of a double-quoted string or here-string, through its terminator.
    fn expandable(&mut self, end: StringEnd) -> PResult<Vec<StringPart>> {
        let start = self.i.saturating_sub(1);
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(
                    start,
                    ParseErrorKind::TerminatorExpectedAtEndOfString,
                    if end == StringEnd::Quote {
                        "The string is missing the terminator: \"."
                    } else {
                        "The string is missing the terminator: \"@."
                    },
                ));
            };
            match c {
                c if is_double_quote(c) && end == StringEnd::Quote => {
                    if self.peek_at(1).is_some_and(is_double_quote) {
                        text.extend(self.peek_at(1));
                        self.i += 2;
                    } else {
                        self.i += 1;
                        break;
                    }
                }
                c if is_double_quote(c)
                    && end == StringEnd::HereString
                    && self.peek_at(1) == Some('@')
                    && self.at_line_start() =>
                {
                    self.i += 2;
                    strip_final_newline(&mut text);
                    break;
                }
                '`' => match self.peek_at(1) {
                    Some(n) => {
                        text.push(escape_char(n));
                        self.i += 2;
                    }
                    None => {
                        self.i += 1;
                    }
                },
                '$' => match self.peek_at(1) {
                    Some('(') => {
                        self.i += 2;
                        let block = self.paren_block("subexpression")?;
                        if !text.is_empty() {
                            parts.push(StringPart::Text(std::mem::take(&mut text)));
                        }
                        parts.push(StringPart::SubExpression(block));
                    }
                    Some(n) if n == '{' || is_name_char(n) || matches!(n, '$' | '?' | '^') => {
                        let var = self.variable_path()?;
                        if !text.is_empty() {
                            parts.push(StringPart::Text(std::mem::take(&mut text)));
                        }
                        parts.push(StringPart::Variable(var));
                    }
                    _ => {
                        text.push('$');
                        self.i += 1;
                    }
                },
                c => {
                    text.push(c);
                    self.i += 1;
                }
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(StringPart::Text(text));
        }
        Ok(parts)
    }

    /// A number literal starting at `at`: its value and where it ends. `allow_sign` accepts
    /// a leading dash. Does not check what follows.
    fn number_at(&self, at: usize, allow_sign: bool) -> Option<(Constant, usize)> {
        let chars = self.src.chars();
        let mut j = at;
        let neg = allow_sign && chars.get(j).is_some_and(|&c| is_dash(c));
        if neg {
            j += 1;
        }
        let is_hex = chars.get(j) == Some(&'0') && matches!(chars.get(j + 1), Some('x' | 'X'));
        let mut long_suffix = false;
        let value: NumberValue;
        if is_hex {
            j += 2;
            let s = j;
            while chars.get(j).is_some_and(char::is_ascii_hexdigit) {
                j += 1;
            }
            if j == s {
                return None;
            }
            let digits: String = chars[s..j].iter().collect();
            let v = u64::from_str_radix(&digits, 16).ok()?;
            if matches!(chars.get(j), Some('l' | 'L')) {
                long_suffix = true;
                j += 1;
            }
            value = if !long_suffix && v <= u64::from(u32::MAX) {
                // PowerShell reads an 8-digit hex literal as the Int32 with those bits.
                NumberValue::Int(i128::from(v as u32 as i32))
            } else {
                NumberValue::Int(i128::from(v as i64))
            };
        } else {
            let s = j;
            while chars.get(j).is_some_and(char::is_ascii_digit) {
                j += 1;
            }
            let mut is_real = false;
            if chars.get(j) == Some(&'.') && chars.get(j + 1).is_some_and(char::is_ascii_digit) {
                is_real = true;
                j += 1;
                while chars.get(j).is_some_and(char::is_ascii_digit) {
                    j += 1;
                }
            }
            if j == s {
                return None;
            }
            if matches!(chars.get(j), Some('e' | 'E')) {
                let mut k = j + 1;
                if matches!(chars.get(k), Some('+' | '-')) {
                    k += 1;
                }
                if chars.get(k).is_some_and(char::is_ascii_digit) {
                    while chars.get(k).is_some_and(char::is_ascii_digit) {
                        k += 1;
                    }
                    is_real = true;
                    j = k;
                }
            }
            let text: String = chars[s..j].iter().collect();
            if matches!(chars.get(j), Some('l' | 'L')) {
                long_suffix = true;
                j += 1;
            } else if matches!(chars.get(j), Some('d' | 'D'))
                && chars.get(j + 1).is_none_or(|c| !is_name_char(*c))
            {
                return None;
            }
            value = if is_real {
                NumberValue::Real(text.parse().ok()?)
            } else {
                match text.parse::<i128>() {
                    Ok(v) if v <= i128::from(i64::MAX) + 1 => NumberValue::Int(v),
                    _ => NumberValue::Real(text.parse().ok()?),
                }
            };
        }
        let mut multiplier: i128 = 1;
        if let (Some(a), Some(b)) = (chars.get(j), chars.get(j + 1))
            && matches!(b, 'b' | 'B')
        {
            let m = match a.to_ascii_lowercase() {
                'k' => Some(1i128 << 10),
                'm' => Some(1 << 20),
                'g' => Some(1 << 30),
                't' => Some(1 << 40),
                'p' => Some(1 << 50),
                _ => None,
            };
            if let Some(m) = m {
                multiplier = m;
                j += 2;
            }
        }
        let constant = match value {
            NumberValue::Real(d) => {
                let d = d * multiplier as f64;
                Constant::Double(if neg { -d } else { d })
            }
            NumberValue::Int(v) => {
                let v = v.checked_mul(multiplier)?;
                let v = if neg { -v } else { v };
                if long_suffix {
                    Constant::Long(i64::try_from(v).ok()?)
                } else if let Ok(small) = i32::try_from(v) {
                    Constant::Int(small)
                } else if let Ok(long) = i64::try_from(v) {
                    Constant::Long(long)
                } else {
                    Constant::Double(v as f64)
                }
            }
        };
        Some((constant, j))
    }
}

enum NumberValue {
    Int(i128),
    Real(f64),
}

enum HereString {
    Verbatim(String),
    Expandable(Vec<StringPart>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StringEnd {
    Quote,
    HereString,
}

fn strip_final_newline(s: &mut String) {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
}

/// The character a backtick escape stands for.
fn escape_char(c: char) -> char {
    match c {
        '0' => '\0',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        other => other,
    }
}

/// Splits `scope:name`; `None` for an unsupported drive.
fn split_variable(raw: &str) -> Option<VariablePath> {
    match raw.split_once(':') {
        None => Some(VariablePath {
            qualifier: None,
            name: raw.to_owned(),
        }),
        Some((q, name)) => {
            let q = q.to_ascii_lowercase();
            matches!(
                q.as_str(),
                "script" | "global" | "local" | "private" | "env"
            )
            .then(|| VariablePath {
                qualifier: Some(q),
                name: name.to_owned(),
            })
        }
    }
}

fn comparison_op(w: &str) -> Option<BinaryOp> {
    let (case, base) = if let Some(rest) = w.strip_prefix('c') {
        (Case::Sensitive, rest)
    } else if let Some(rest) = w.strip_prefix('i') {
        (Case::Insensitive, rest)
    } else {
        (Case::Insensitive, w)
    };
    let cmp = |op| Some(BinaryOp::Compare(op, case));
    // `-is`, `-isnot` start with 'i' too: try the word as written first. No `-in`/`-notin`:
    // PowerShell 3.0 added them, and a 2.0 host refuses the whole script (see `unexpected`).
    match w {
        "is" => return Some(BinaryOp::Is),
        "isnot" => return Some(BinaryOp::IsNot),
        "as" => return Some(BinaryOp::As),
        "join" => return Some(BinaryOp::Join),
        "contains" => return Some(BinaryOp::Compare(CompareOp::Contains, Case::Insensitive)),
        _ => {}
    }
    match base {
        "eq" => cmp(CompareOp::Eq),
        "ne" => cmp(CompareOp::Ne),
        "gt" => cmp(CompareOp::Gt),
        "ge" => cmp(CompareOp::Ge),
        "lt" => cmp(CompareOp::Lt),
        "le" => cmp(CompareOp::Le),
        "like" => cmp(CompareOp::Like),
        "notlike" => cmp(CompareOp::NotLike),
        "match" => cmp(CompareOp::Match),
        "notmatch" => cmp(CompareOp::NotMatch),
        "contains" => cmp(CompareOp::Contains),
        "notcontains" => cmp(CompareOp::NotContains),
        "replace" => Some(BinaryOp::Replace(case)),
        "split" => Some(BinaryOp::Split(case)),
        _ => None,
    }
}

fn is_lvalue(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Variable(_) => true,
        ExprKind::Member { is_static, .. } => !is_static,
        ExprKind::Index { .. } => true,
        // `[int]$x = ...`: converts the value (the variable is not constrained afterwards).
        ExprKind::Cast(_, inner) => matches!(inner.kind, ExprKind::Variable(_)),
        _ => false,
    }
}
