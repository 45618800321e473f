//! The syntax tree [`parse`](super::parse) produces: statements, pipelines, commands and
//! expressions of the supported subset, each with the source span errors point at.
//!
//! Spans are character offsets into the script text (not bytes), so that the interpreter can
//! report `At line:L char:C` the way PowerShell counts. The tree is immutable once built and
//! shared through `Arc` where the interpreter keeps parts of it alive (functions, script
//! blocks stored in variables).

use std::sync::Arc;

/// A half-open range of character offsets into the script text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// The first character.
    pub start: u32,
    /// One past the last character.
    pub end: u32,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }
}

/// The source text of a script with its line table, shared by every script block parsed
/// from it so that errors can quote the offending line.
#[derive(Debug)]
pub struct Source {
    chars: Vec<char>,
    line_starts: Vec<usize>,
}

impl Source {
    /// Indexes `text`.
    pub fn new(text: &str) -> Source {
        let chars: Vec<char> = text.chars().collect();
        let mut line_starts = vec![0];
        for (i, c) in chars.iter().enumerate() {
            if *c == '\n' {
                line_starts.push(i + 1);
            }
        }
        Source { chars, line_starts }
    }

    /// The characters of the script.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The text between two offsets.
    pub fn text(&self, span: Span) -> String {
        let end = (span.end as usize).min(self.chars.len());
        let start = (span.start as usize).min(end);
        self.chars[start..end].iter().collect()
    }

    /// The 1-based line and column of an offset, and the text of that line (without its
    /// line terminator).
    pub fn position(&self, offset: u32) -> (u32, u32, String) {
        let offset = (offset as usize).min(self.chars.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let mut end = start;
        while end < self.chars.len() && self.chars[end] != '\n' {
            end += 1;
        }
        let text: String = self.chars[start..end].iter().collect();
        let text = text.strip_suffix('\r').unwrap_or(&text).to_owned();
        let line_no = u32::try_from(line + 1).unwrap_or(u32::MAX);
        let col = u32::try_from(offset - start + 1).unwrap_or(u32::MAX);
        (line_no, col, text)
    }
}

/// A parsed script: the top-level script block and its source.
#[derive(Clone, Debug)]
pub struct Script {
    /// The body, as a script block (a script is one).
    pub block: Arc<ScriptBlockAst>,
}

/// A script block: `{ param(...) begin {} process {} end {} }` or just statements.
#[derive(Debug)]
pub struct ScriptBlockAst {
    /// The declared parameters, from `param(...)` or `function f($a) {}`.
    pub params: Vec<ParamDecl>,
    /// The `begin` block, if named blocks were used.
    pub begin: Option<Block>,
    /// The `process` block, if named blocks were used.
    pub process: Option<Block>,
    /// The `end` block; the unnamed body of a script block is its end block.
    pub end: Block,
    /// Where the script block is in its source (including braces, if any).
    pub span: Span,
    /// The source it was parsed from.
    pub source: Arc<Source>,
}

impl ScriptBlockAst {
    /// The text between the braces, as `ScriptBlock.ToString()` returns it.
    pub fn body_text(&self) -> String {
        let text = self.source.text(self.span);
        match text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(inner) => inner.to_owned(),
            None => text,
        }
    }
}

/// A statement list; `trap` statements are collected separately because a trap covers its
/// whole statement list wherever it is written.
#[derive(Debug, Default)]
pub struct Block {
    /// The statements, in order.
    pub statements: Vec<Statement>,
    /// The `trap` handlers of this list.
    pub traps: Vec<Trap>,
}

/// `trap [Type] { ... }`.
#[derive(Debug)]
pub struct Trap {
    /// The exception type filter, if any.
    pub type_name: Option<TypeName>,
    /// The handler.
    pub body: Block,
}

/// One declared parameter.
#[derive(Debug)]
pub struct ParamDecl {
    /// The variable name, without `$`.
    pub name: String,
    /// Its type constraint, e.g. `[string]` or `[switch]`.
    pub type_name: Option<TypeName>,
    /// `[Parameter(Mandatory = $true)]`.
    pub mandatory: bool,
    /// `[Parameter(ValueFromPipeline = $true)]`.
    pub from_pipeline: bool,
    /// The default value expression.
    pub default: Option<Expr>,
    /// Where it is declared.
    pub span: Span,
}

/// A statement with its span.
#[derive(Debug)]
pub struct Statement {
    /// What kind of statement.
    pub kind: StatementKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of statement.
#[derive(Debug)]
#[non_exhaustive]
pub enum StatementKind {
    /// A pipeline (including a lone expression).
    Pipeline(Pipeline),
    /// `target op value`.
    Assign {
        /// The variable, index or member assigned to.
        target: Expr,
        /// `=`, `+=` ...
        op: AssignOp,
        /// The right-hand side: a pipeline or another assignment.
        value: Box<Statement>,
        /// The span of the operator.
        op_span: Span,
    },
    /// `if (c) {} elseif (c) {} else {}`.
    If {
        /// Conditions and their blocks.
        clauses: Vec<(Pipeline, Block)>,
        /// The `else` block.
        otherwise: Option<Block>,
    },
    /// `while (c) {}`.
    While {
        /// The loop label (`:name while ...`).
        label: Option<String>,
        /// The condition.
        cond: Pipeline,
        /// The body.
        body: Block,
    },
    /// `do {} while (c)` or `do {} until (c)`.
    DoLoop {
        /// The loop label.
        label: Option<String>,
        /// The body.
        body: Block,
        /// The condition.
        cond: Pipeline,
        /// `until` rather than `while`.
        until: bool,
    },
    /// `for (init; cond; step) {}`.
    For {
        /// The loop label.
        label: Option<String>,
        /// Run once first.
        init: Option<Box<Statement>>,
        /// Tested before each iteration; absent means true.
        cond: Option<Pipeline>,
        /// Run after each iteration.
        step: Option<Box<Statement>>,
        /// The body.
        body: Block,
    },
    /// `foreach ($x in ...) {}`.
    Foreach {
        /// The loop label.
        label: Option<String>,
        /// The loop variable.
        variable: String,
        /// The collection.
        collection: Pipeline,
        /// The body.
        body: Block,
    },
    /// `function Name { ... }` or `filter Name { ... }`.
    Function(Arc<FunctionDef>),
    /// `try {} catch [T] {} finally {}`.
    Try {
        /// The guarded block.
        body: Block,
        /// The catch clauses, in order.
        catches: Vec<Catch>,
        /// The finally block.
        finally: Option<Block>,
    },
    /// `throw [value]`.
    Throw(Option<Pipeline>),
    /// `return [value]`.
    Return(Option<Pipeline>),
    /// `exit [code]`.
    Exit(Option<Pipeline>),
    /// `break [label]`.
    Break(Option<String>),
    /// `continue [label]`.
    Continue(Option<String>),
}

/// A function definition.
#[derive(Debug)]
pub struct FunctionDef {
    /// The name as written.
    pub name: String,
    /// `filter` rather than `function`: the body is a process block.
    pub filter: bool,
    /// The body, parameters included.
    pub body: Arc<ScriptBlockAst>,
}

/// `catch [T1], [T2] { ... }`.
#[derive(Debug)]
pub struct Catch {
    /// The exception types; empty catches everything.
    pub types: Vec<TypeName>,
    /// The handler.
    pub body: Block,
}

/// Assignment operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssignOp {
    /// `=`
    Assign,
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
    /// `%=`
    Rem,
}

/// `a | b | c`.
#[derive(Debug)]
pub struct Pipeline {
    /// The elements; only the first may be an expression.
    pub elements: Vec<PipelineElement>,
    /// Where it is.
    pub span: Span,
}

impl Pipeline {
    /// The expression, if this pipeline is a lone expression without redirections.
    pub fn as_expression(&self) -> Option<&Expr> {
        match self.elements.as_slice() {
            [
                PipelineElement {
                    kind: ElementKind::Expression(e),
                    redirections,
                },
            ] if redirections.is_empty() => Some(e),
            _ => None,
        }
    }
}

/// One element of a pipeline, with its redirections.
#[derive(Debug)]
pub struct PipelineElement {
    /// An expression or a command.
    pub kind: ElementKind,
    /// `2>&1`, `> $null` ...
    pub redirections: Vec<Redirection>,
}

/// What a pipeline element is.
#[derive(Debug)]
#[non_exhaustive]
pub enum ElementKind {
    /// An expression (first element only).
    Expression(Expr),
    /// A command invocation.
    Command(Command),
}

/// The redirections the subset supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Redirection {
    /// `> $null`: discard output.
    OutputToNull,
    /// `2> $null`: discard errors.
    ErrorToNull,
    /// `2>&1`: errors join the output.
    ErrorToOutput,
}

/// A command invocation.
#[derive(Debug)]
pub struct Command {
    /// How the command is named.
    pub target: CommandTarget,
    /// `.` (dot-source: run in the current scope) rather than `&` or a plain name.
    pub dot_source: bool,
    /// Parameters and arguments, in order.
    pub elements: Vec<CommandElement>,
    /// The span of the command name (or of the `&`/`.` expression).
    pub name_span: Span,
    /// The span of the whole command.
    pub span: Span,
}

/// How a command is named.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommandTarget {
    /// A bare name: `Get-Thing`.
    Name(String),
    /// `& expr` / `. expr`: a script block or a command name computed at run time.
    Expression(Box<Expr>),
}

/// One element after the command name.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommandElement {
    /// `-Name` or `-Name:value`.
    Parameter {
        /// The name without the dash, as written.
        name: String,
        /// The value given with a colon.
        argument: Option<Expr>,
        /// Where the parameter token is.
        span: Span,
    },
    /// A positional argument or the value of the preceding parameter.
    Argument(Expr),
    /// `@name`: the hashtable (named) or array (positional) in a variable.
    Splat {
        /// The variable name.
        name: String,
        /// Where it is.
        span: Span,
    },
}

/// An expression with its span.
#[derive(Debug)]
pub struct Expr {
    /// What kind of expression.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// A constant from the source.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Constant {
    /// A string (single-quoted, or a bareword argument).
    Str(Arc<str>),
    /// An `Int32` literal.
    Int(i32),
    /// An `Int64` literal.
    Long(i64),
    /// A `Double` literal.
    Double(f64),
}

/// A part of a double-quoted string.
#[derive(Debug)]
#[non_exhaustive]
pub enum StringPart {
    /// Literal text (escapes already applied).
    Text(String),
    /// `$name` or `${name}`.
    Variable(VariablePath),
    /// `$( ... )`.
    SubExpression(Block),
}

/// A variable reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariablePath {
    /// The scope or drive qualifier (`script`, `global`, `local`, `env`), lower-cased.
    pub qualifier: Option<String>,
    /// The name, without `$` and qualifier.
    pub name: String,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnaryOp {
    /// `-not` / `!`
    Not,
    /// `-x`
    Negate,
    /// `+x`
    Plus,
    /// `-bnot`
    BitNot,
    /// unary `-split`
    Split,
    /// unary `-join`
    Join,
    /// `++x`
    PreIncrement,
    /// `--x`
    PreDecrement,
    /// `x++`
    PostIncrement,
    /// `x--`
    PostDecrement,
}

/// Binary operators (comparison operators carry their case sensitivity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinaryOp {
    /// `-and`
    And,
    /// `-or`
    Or,
    /// `-xor`
    Xor,
    /// `-band`
    BitAnd,
    /// `-bor`
    BitOr,
    /// `-bxor`
    BitXor,
    /// A comparison-level operator.
    Compare(CompareOp, Case),
    /// `-is`
    Is,
    /// `-isnot`
    IsNot,
    /// `-as`
    As,
    /// `-join`
    Join,
    /// `-split`
    Split(Case),
    /// `-replace`
    Replace(Case),
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `-f`
    Format,
    /// `..`
    Range,
}

/// Case sensitivity of a comparison: `-eq`/`-ieq` ignore case, `-ceq` does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Ignore case (the default).
    Insensitive,
    /// Compare exactly (`c` prefix).
    Sensitive,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompareOp {
    /// `-eq`
    Eq,
    /// `-ne`
    Ne,
    /// `-gt`
    Gt,
    /// `-ge`
    Ge,
    /// `-lt`
    Lt,
    /// `-le`
    Le,
    /// `-like`
    Like,
    /// `-notlike`
    NotLike,
    /// `-match`
    Match,
    /// `-notmatch`
    NotMatch,
    /// `-contains`
    Contains,
    /// `-notcontains`
    NotContains,
    // No `-in`/`-notin`: PowerShell 3.0 operators, which a 2.0 parser refuses.
}

/// A type name as written in `[...]`, e.g. `string`, `System.Text.Encoding`, `string[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeName {
    /// The name without brackets; `[]` suffixes included.
    pub name: String,
    /// Where it is.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExprKind {
    /// A number or a string without expansion.
    Constant(Constant),
    /// A double-quoted string or here-string.
    Expandable(Vec<StringPart>),
    /// `$name`.
    Variable(VariablePath),
    /// `a, b, c`.
    ArrayLiteral(Vec<Expr>),
    /// `,x`: a one-element array.
    UnaryComma(Box<Expr>),
    /// `@( ... )`.
    ArraySubExpression(Block),
    /// `$( ... )`.
    SubExpression(Block),
    /// `( pipeline )` or `( assignment )`.
    Paren(Box<Statement>),
    /// `@{ k = v; ... }`.
    Hashtable(Vec<(Expr, Statement)>),
    /// `{ ... }`.
    ScriptBlock(Arc<ScriptBlockAst>),
    /// `[type]`.
    TypeLiteral(TypeName),
    /// `[type] expr`.
    Cast(TypeName, Box<Expr>),
    /// A unary operator.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operator; the span of the operator token is kept for errors.
    Binary(BinaryOp, Box<Expr>, Box<Expr>, Span),
    /// `x.Name`, `x.$name`, `[T]::Name`.
    Member {
        /// The object (or a type literal for static access).
        target: Box<Expr>,
        /// The member name (a constant or an expression).
        name: Box<Expr>,
        /// `::` rather than `.`.
        is_static: bool,
    },
    /// `x.Name(args)`, `[T]::Name(args)`.
    MethodCall {
        /// The object (or a type literal for static calls).
        target: Box<Expr>,
        /// The method name.
        name: Box<Expr>,
        /// The arguments.
        args: Vec<Expr>,
        /// `::` rather than `.`.
        is_static: bool,
    },
    /// `x[index]`.
    Index {
        /// The collection.
        target: Box<Expr>,
        /// The index (an array of indices slices).
        index: Box<Expr>,
    },
}
