//! A deterministic generator of the CLIs' own transcript stores (Claude Code projects, Codex
//! rollouts, Gemini CLI chats), in the formats of the real samples (tests/data/native-samples),
//! with every trap the import must get right, and the ground truth by construction: the
//! requests each conversation really made, in clinvk's terms. The import's results are checked
//! against that truth, never against its own reading.
//!
//! Traps written: Claude responses split over several lines (snapshots, the last one final),
//! `<synthetic>` error lines, sidechain replays of main-chain requests, Task subagents' files
//! (their usage is the parent's), forks that copy their parent's lines, meta and command lines
//! before the first prompt, lines without timestamps, torn lines; Codex token counts emitted
//! twice and `info: null`, environment-context user messages, forks whose running total starts
//! at the parent's, rollouts compressed to `.jsonl.zst` and archived; Gemini answers whose tokens
//! come with a second copy, `$set` copies of the whole history without tokens, legacy `.json`
//! records, the project registry.
//!
//! Self-contained (serde_json, chrono, zstd), so that the benchmarks can include it too.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

/// The CLI a conversation belongs to, by its clinvk name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cli {
    Claude,
    Codex,
    Gemini,
}

impl Cli {
    pub fn name(self) -> &'static str {
        match self {
            Cli::Claude => "claude",
            Cli::Codex => "codex",
            Cli::Gemini => "gemini",
        }
    }
}

/// One request a conversation really made, as clinvk counts it: input includes cache reads
/// (and writes), output includes reasoning.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub cli: Cli,
    /// The conversation's id (the session id it gets).
    pub conversation: String,
    pub at: DateTime<Utc>,
    pub model: String,
    pub input: u64,
    pub output: u64,
    pub cached: u64,
}

impl Truth {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }
}

/// A conversation written, with where.
#[derive(Debug, Clone)]
pub struct Written {
    pub cli: Cli,
    pub id: String,
    pub path: PathBuf,
    pub workdir: String,
    pub prompt: String,
}

/// The store being generated: the user's home holding `.claude`, `.codex`, `.gemini`.
pub struct NativeStore {
    pub home: PathBuf,
    pub truth: Vec<Truth>,
    pub written: Vec<Written>,
    rng: u64,
    clock: DateTime<Utc>,
    serial: u64,
    /// Bytes of tool output written with each request (real transcripts are mostly that).
    padding: usize,
    /// Write prose (prompts and answers in Latin, Cyrillic or CJK script) instead of "ok".
    prose: bool,
    /// With prose: the percentage of conversations given a unique planted token.
    plant_percent: u64,
    /// The tokens planted, each in one message of one conversation.
    pub planted: Vec<Planted>,
    /// Tokens made so far (each one new).
    tokens_made: u64,
    /// The script of the conversation being written.
    script: Script,
}

/// The writing system of a conversation's prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Script {
    Latin,
    Cyrillic,
    /// Chinese characters without spaces: words are inside sentences.
    Cjk,
}

/// A token that occurs in one message of one conversation, and nowhere else.
#[derive(Debug, Clone)]
pub struct Planted {
    pub conversation: String,
    pub token: String,
    pub script: Script,
}

const LATIN: &[&str] = &[
    "the",
    "retry",
    "logic",
    "fails",
    "when",
    "the",
    "server",
    "returns",
    "a",
    "timeout",
    "we",
    "should",
    "add",
    "backoff",
    "and",
    "log",
    "the",
    "error",
    "before",
    "giving",
    "up",
    "this",
    "function",
    "parses",
    "config",
    "file",
    "into",
    "struct",
    "tests",
    "cover",
    "edge",
    "cases",
    "database",
    "migration",
    "index",
    "query",
    "plan",
    "cache",
    "invalidation",
    "is",
    "hard",
    "let",
    "me",
    "check",
    "module",
    "build",
    "pipeline",
    "deploy",
    "staging",
    "review",
    "patch",
    "token",
    "bucket",
    "rate",
    "limiter",
    "worker",
    "queue",
    "message",
    "handler",
    "async",
    "runtime",
    "thread",
    "pool",
    "memory",
    "leak",
    "profile",
    "benchmark",
    "latency",
    "request",
    "response",
    "header",
    "parser",
    "lexer",
    "grammar",
    "type",
    "checker",
    "compiler",
    "warning",
    "refactor",
    "rename",
    "variable",
    "signature",
    "trait",
    "generic",
    "lifetime",
    "borrow",
];
const CYRILLIC: &[&str] = &[
    "повтор",
    "запроса",
    "сервер",
    "возвращает",
    "ошибку",
    "нужно",
    "добавить",
    "задержку",
    "и",
    "записать",
    "в",
    "журнал",
    "функция",
    "читает",
    "файл",
    "настроек",
    "тесты",
    "проверяют",
    "база",
    "данных",
    "индекс",
    "запрос",
    "кэш",
    "очередь",
    "сообщений",
    "обработчик",
    "поток",
    "память",
    "утечка",
    "профиль",
    "задержка",
    "ответ",
    "заголовок",
    "разбор",
    "компилятор",
];
/// Words of technical Chinese, written without spaces; the planted tokens use other characters.
const CJK: &[&str] = &[
    "我们",
    "昨天",
    "讨论",
    "了",
    "重试",
    "逻辑",
    "服务器",
    "返回",
    "超时",
    "错误",
    "应该",
    "添加",
    "退避",
    "并",
    "记录",
    "日志",
    "这个",
    "函数",
    "解析",
    "配置",
    "文件",
    "测试",
    "覆盖",
    "边界",
    "情况",
    "数据库",
    "迁移",
    "索引",
    "查询",
    "计划",
    "缓存",
    "失效",
    "很难",
    "让我",
    "检查",
    "模块",
    "构建",
    "部署",
    "审查",
    "补丁",
    "令牌桶",
    "限流器",
    "工作",
    "队列",
    "消息",
    "处理",
    "异步",
    "运行时",
    "线程池",
    "内存",
    "泄漏",
    "性能",
    "分析",
    "延迟",
    "请求",
    "响应",
    "头部",
    "解析器",
    "编译",
    "警告",
    "重构",
    "变量",
    "签名",
];

impl Script {
    /// Planted tokens' characters: none of them in the prose's vocabulary.
    fn token_alphabet(self) -> Vec<char> {
        match self {
            Script::Latin => "zqxjkvw".chars().collect(),
            Script::Cyrillic => "щъыэюяфц".chars().collect(),
            Script::Cjk => "鲸鹤麒麟凤凰龟蛟鳄蜥蝶蜂蚁螺蟹".chars().collect(),
        }
    }
}

impl NativeStore {
    pub fn new(home: &Path, seed: u64) -> NativeStore {
        NativeStore {
            home: home.to_path_buf(),
            truth: Vec::new(),
            written: Vec::new(),
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            clock: "2026-10-01T08:00:00Z".parse().unwrap(),
            serial: 0,
            padding: 0,
            prose: false,
            plant_percent: 0,
            planted: Vec::new(),
            tokens_made: 0,
            script: Script::Latin,
        }
    }

    /// Write prose in prompts and answers, and plant a unique token in `plant_percent` % of
    /// the conversations (in one message each).
    pub fn with_prose(mut self, plant_percent: u64) -> NativeStore {
        self.prose = true;
        self.plant_percent = plant_percent;
        self
    }

    /// `words` words of prose in the current script.
    fn prose_of(&mut self, words: u64) -> String {
        let mut out = String::new();
        match self.script {
            Script::Latin | Script::Cyrillic => {
                let vocabulary = if self.script == Script::Latin {
                    LATIN
                } else {
                    CYRILLIC
                };
                for i in 0..words {
                    if i > 0 {
                        out.push(if self.chance(8) { '\n' } else { ' ' });
                    }
                    out.push_str(vocabulary[self.below(vocabulary.len() as u64) as usize]);
                }
                out.push('.');
            }
            Script::Cjk => {
                for i in 0..words {
                    out.push_str(CJK[self.below(CJK.len() as u64) as usize]);
                    if i % 9 == 8 {
                        out.push('，');
                    }
                }
                out.push('。');
            }
        }
        out
    }

    /// A conversation begins: its script, and which of its `messages` gets a planted token
    /// (None: none does).
    fn begin_prose(&mut self, messages: u64) -> Option<u64> {
        if !self.prose {
            return None;
        }
        self.script = match self.below(10) {
            0..=5 => Script::Latin,
            6 | 7 => Script::Cyrillic,
            _ => Script::Cjk,
        };
        self.chance(self.plant_percent)
            .then(|| self.below(messages))
    }

    /// The text of message `n` of conversation `id` (an answer of `words` words; "ok" without
    /// prose), with the planted token in it when `plant` names it.
    fn said(&mut self, id: &str, n: u64, plant: Option<u64>, words: u64) -> String {
        if !self.prose {
            return "ok".into();
        }
        let mut text = self.prose_of(words);
        if plant == Some(n) {
            let alphabet = self.script.token_alphabet();
            self.tokens_made += 1;
            // Spread over the alphabet (an odd multiplier coprime with every base used is a
            // bijection), so that tokens do not share long runs of one letter.
            let base = alphabet.len() as u64;
            let mut serial = (self.tokens_made * 40507) % base.pow(6);
            let mut token = String::new();
            for _ in 0..6 {
                token.push(alphabet[(serial % base) as usize]);
                serial /= base;
            }
            // Inside the text: between words, or inside a CJK sentence.
            let chars: Vec<char> = text.chars().collect();
            let at = self.below(chars.len() as u64) as usize;
            let (before, after): (String, String) =
                (chars[..at].iter().collect(), chars[at..].iter().collect());
            text = if self.script == Script::Cjk {
                format!("{before}{token}{after}")
            } else {
                format!("{} {token} {}", before.trim_end(), after.trim_start())
            };
            self.planted.push(Planted {
                conversation: id.to_string(),
                token,
                script: self.script,
            });
        }
        text
    }

    /// Write about `bytes` of tool output with each request, as real transcripts hold.
    pub fn with_padding(mut self, bytes: usize) -> NativeStore {
        self.padding = bytes;
        self
    }

    /// Tool output of about the padding's size (varied, as real output is).
    fn filler(&mut self) -> String {
        let words = [
            "fn", "let", "match", "impl", "struct", "return", "Ok", "Some", "error", "path",
        ];
        let mut out = String::with_capacity(self.padding + 16);
        while out.len() < self.padding {
            out.push_str(words[self.below(words.len() as u64) as usize]);
            out.push(if self.chance(10) { '\n' } else { ' ' });
        }
        out
    }

    /// Move the clock on (so that later conversations come after a given time).
    pub fn advance(&mut self, by: Duration) {
        self.clock += by;
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A UUID-shaped id, unique in this store.
    fn uuid(&mut self) -> String {
        self.serial += 1;
        let a = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            self.serial & 0xfff,
            (a >> 4) & 0xfff,
            self.serial
        )
    }

    /// Time moves on: a minute to two hours per step (a heavy user's year holds about ten
    /// thousand conversations).
    fn tick(&mut self) -> DateTime<Utc> {
        let minutes = 1 + self.below(120) as i64;
        self.clock += Duration::minutes(minutes);
        self.clock
    }

    /// `min` to `min + spread` seconds later.
    fn pause(&mut self, min: i64, spread: u64) -> DateTime<Utc> {
        let n = min + self.below(spread) as i64;
        self.seconds(n)
    }

    fn seconds(&mut self, n: i64) -> DateTime<Utc> {
        self.clock += Duration::seconds(n);
        self.clock
    }

    pub fn claude_root(&self) -> PathBuf {
        self.home.join(".claude")
    }

    pub fn codex_root(&self) -> PathBuf {
        self.home.join(".codex")
    }

    pub fn gemini_root(&self) -> PathBuf {
        self.home.join(".gemini")
    }

    /// `n` conversations of each CLI.
    pub fn generate(&mut self, n: usize) {
        for _ in 0..n {
            self.claude_conversation();
            self.codex_conversation();
            self.gemini_conversation();
        }
    }

    pub fn totals_of(&self, cli: Cli) -> (u64, u64, u64) {
        self.truth
            .iter()
            .filter(|t| t.cli == cli)
            .fold((0, 0, 0), |(i, o, c), t| {
                (i + t.input, o + t.output, c + t.cached)
            })
    }

    // ----- Claude Code ------------------------------------------------------------------------

    /// A Claude conversation: sometimes a fork of the previous one, sometimes with a subagent.
    pub fn claude_conversation(&mut self) -> Written {
        let parent = if self.chance(20) {
            self.written
                .iter()
                .rev()
                .find(|w| w.cli == Cli::Claude)
                .cloned()
        } else {
            None
        };
        let id = self.uuid();
        let workdir = match &parent {
            Some(p) => p.workdir.clone(),
            None => format!("/home/dev/proj-{}", self.below(7)),
        };
        let dir = self.claude_root().join("projects").join(sanitize(&workdir));
        let path = dir.join(format!("{id}.jsonl"));
        let mut lines: Vec<String> = Vec::new();
        if let Some(p) = &parent {
            // The copy makes its parent's planted token no longer unique.
            self.planted.retain(|t| t.conversation != p.id);
            // The fork's copy of its parent: user and assistant lines, sessionId rewritten,
            // assistant lines pointing back with requestSessionId.
            for line in std::fs::read_to_string(&p.path).unwrap().lines() {
                let Ok(mut v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                match v["type"].as_str() {
                    Some("user") => {}
                    Some("assistant") => {
                        v["requestSessionId"] = json!(p.id);
                    }
                    _ => continue,
                }
                v["sessionId"] = json!(id);
                lines.push(v.to_string());
            }
        }
        let t = self.tick();
        lines.push(json!({"type":"queue-operation","operation":"enqueue","timestamp":stamp(t),"sessionId":id}).to_string());
        if self.chance(30) {
            lines.push(self.claude_user(
                &id,
                &workdir,
                t,
                "<command-name>/init</command-name>",
                true,
            ));
        }
        let mut prompt = format!(
            "fix the {} in module {}",
            ["bug", "test", "docs"][self.below(3) as usize],
            self.below(100)
        );
        let plant = self.begin_prose(6);
        if self.prose {
            prompt = format!("{prompt}: {}", self.said(&id, 0, plant, 12));
        }
        lines.push(self.claude_user(&id, &workdir, t, &prompt, false));
        lines.push(json!({"type":"last-prompt","lastPrompt":prompt,"sessionId":id}).to_string());
        let model =
            ["claude-sonnet-4-6", "claude-opus-4-5", "claude-haiku-4-5"][self.below(3) as usize];
        let requests = 1 + self.below(5);
        let mut main_requests: Vec<(String, String, Value)> = Vec::new();
        for r in 0..requests {
            let at = self.pause(3, 40);
            let (msg, req) = (format!("msg_{id}_{r}"), format!("req_{id}_{r}"));
            let usage = self.claude_usage();
            // A response in 1 to 3 lines: snapshots first, the final figures last.
            let blocks = 1 + self.below(3);
            let words = 40 + if self.prose { self.below(80) } else { 0 };
            let answer = self.said(&id, r + 1, plant, words);
            for b in 0..blocks {
                let mut u = usage.clone();
                // (Each line holds one block of the response: the text is in the last.)
                let text = if b + 1 < blocks {
                    u["output_tokens"] = json!(1);
                    None
                } else {
                    Some(answer.as_str())
                };
                lines.push(
                    self.claude_assistant(&id, &workdir, at, &msg, &req, model, &u, false, text),
                );
            }
            self.truth.push(claude_truth(&id, at, model, &usage));
            main_requests.push((msg, req, usage));
            if self.padding > 0 {
                let output = self.filler();
                lines.push(json!({"parentUuid": self.uuid(), "isSidechain": false, "type": "user",
                    "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": output}]},
                    "uuid": self.uuid(), "timestamp": stamp(at), "cwd": workdir, "sessionId": id}).to_string());
            }
            if self.chance(15) {
                lines.push(
                    json!({"type":"cost-state","sessionId":id,"totalCostUSD":0.01}).to_string(),
                );
            }
        }
        if self.chance(25) {
            // A sidechain replay of a main-chain request: counted once.
            let (msg, req, usage) = main_requests[0].clone();
            let at = self.seconds(1);
            lines.push(
                self.claude_assistant(&id, &workdir, at, &msg, &req, model, &usage, true, None),
            );
        }
        if self.chance(20) {
            // The CLI's own error line.
            let at = self.seconds(1);
            let zero = json!({"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0});
            lines.push(self.claude_assistant(
                &id,
                &workdir,
                at,
                "synthetic-1",
                "req_err",
                "<synthetic>",
                &zero,
                false,
                Some("API Error: 500"),
            ));
        }
        if self.chance(10) {
            lines.push("{\"type\":\"assistant\",\"message\":{\"id\":\"torn".into());
        }
        write_lines(&path, &lines);
        if self.chance(25) {
            // A Task subagent's file: sidechain lines with the parent's sessionId.
            let sub = dir
                .join(&id)
                .join("subagents")
                .join(format!("agent-{}.jsonl", self.below(1000)));
            let mut sub_lines = Vec::new();
            for r in 0..1 + self.below(3) {
                let at = self.seconds(2);
                let (msg, req) = (format!("msg_{id}_sub{r}"), format!("req_{id}_sub{r}"));
                let usage = self.claude_usage();
                sub_lines.push(self.claude_assistant(
                    &id,
                    &workdir,
                    at,
                    &msg,
                    &req,
                    "claude-haiku-4-5",
                    &usage,
                    true,
                    Some("a subagent's answer"),
                ));
                self.truth
                    .push(claude_truth(&id, at, "claude-haiku-4-5", &usage));
            }
            write_lines(&sub, &sub_lines);
        }
        let w = Written {
            cli: Cli::Claude,
            id,
            path,
            workdir,
            prompt,
        };
        self.written.push(w.clone());
        w
    }

    /// Append one more request to a Claude conversation (a resume in the CLI): returns it.
    pub fn claude_resume(&mut self, w: &Written) -> Truth {
        let at = self.tick();
        let mut lines = vec![self.claude_user(&w.id, &w.workdir, at, "and again", false)];
        let usage = self.claude_usage();
        let n = self.serial;
        self.serial += 1;
        let (msg, req) = (format!("msg_{}_r{n}", w.id), format!("req_{}_r{n}", w.id));
        lines.push(self.claude_assistant(
            &w.id,
            &w.workdir,
            at,
            &msg,
            &req,
            "claude-sonnet-4-6",
            &usage,
            false,
            Some("ok"),
        ));
        append_lines(&w.path, &lines);
        let t = claude_truth(&w.id, at, "claude-sonnet-4-6", &usage);
        self.truth.push(t.clone());
        t
    }

    fn claude_usage(&mut self) -> Value {
        json!({
            "input_tokens": 1 + self.below(500),
            "cache_creation_input_tokens": self.below(3000),
            "cache_read_input_tokens": self.below(40000),
            "output_tokens": 5 + self.below(900),
            "output_tokens_details": {"thinking_tokens": self.below(5)},
            "service_tier": "standard"
        })
    }

    fn claude_user(
        &mut self,
        id: &str,
        cwd: &str,
        at: DateTime<Utc>,
        text: &str,
        meta: bool,
    ) -> String {
        let mut v = json!({
            "parentUuid": null, "isSidechain": false, "type": "user",
            "message": {"role": "user", "content": text},
            "uuid": self.uuid(), "timestamp": stamp(at), "userType": "external",
            "cwd": cwd, "sessionId": id, "version": "2.1.328", "gitBranch": "HEAD"
        });
        if meta {
            v["isMeta"] = json!(true);
        }
        v.to_string()
    }

    #[allow(clippy::too_many_arguments)]
    fn claude_assistant(
        &mut self,
        id: &str,
        cwd: &str,
        at: DateTime<Utc>,
        msg: &str,
        req: &str,
        model: &str,
        usage: &Value,
        sidechain: bool,
        text: Option<&str>,
    ) -> String {
        let content = match text {
            Some(text) => json!([{"type": "text", "text": text}]),
            None => json!([{"type": "thinking", "thinking": ""}]),
        };
        json!({
            "parentUuid": self.uuid(), "isSidechain": sidechain,
            "message": {"id": msg, "type": "message", "role": "assistant", "model": model,
                        "content": content, "stop_reason": "end_turn",
                        "usage": usage},
            "requestId": req, "type": "assistant", "uuid": self.uuid(), "timestamp": stamp(at),
            "cwd": cwd, "sessionId": id, "version": "2.1.328"
        })
        .to_string()
    }

    // ----- Codex ------------------------------------------------------------------------------

    /// A Codex thread: sometimes a fork of the previous one, compressed or archived.
    pub fn codex_conversation(&mut self) -> Written {
        let parent = if self.chance(15) {
            self.written
                .iter()
                .rev()
                .find(|w| w.cli == Cli::Codex)
                .cloned()
        } else {
            None
        };
        let id = self.uuid();
        let workdir = format!("/home/dev/proj-{}", self.below(7));
        let t = self.tick();
        let day = t.format("%Y/%m/%d").to_string();
        let name = format!("rollout-{}-{id}.jsonl", t.format("%Y-%m-%dT%H-%M-%S"));
        let where_ = self.below(10);
        let dir = if where_ == 0 {
            self.codex_root().join("archived_sessions")
        } else {
            self.codex_root().join("sessions").join(&day)
        };
        let mut ordinal = 0u64;
        let line = |v: Value, ordinal: &mut u64| {
            let mut v = v;
            v["ordinal"] = json!(*ordinal);
            *ordinal += 1;
            v.to_string()
        };
        let base: [u64; 5] = parent
            .as_ref()
            .map(|p| codex_final_total(&p.path))
            .unwrap_or_default();
        let mut meta = json!({"id": id, "session_id": id, "timestamp": stamp(t), "cwd": workdir, "source": "exec", "cli_version": "0.169.0"});
        if let Some(p) = &parent {
            meta["forked_from_id"] = json!(p.id);
        }
        let mut lines = vec![
            line(
                json!({"timestamp": stamp(t), "type": "session_meta", "payload": meta}),
                &mut ordinal,
            ),
            line(
                json!({"timestamp": stamp(t), "type": "response_item", "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("<environment_context>\n  <cwd>{workdir}</cwd>\n</environment_context>")}]}}),
                &mut ordinal,
            ),
        ];
        let model = ["gpt-5.1-codex", "gpt-6.1-sol"][self.below(2) as usize];
        lines.push(line(json!({"timestamp": stamp(t), "type": "turn_context", "payload": {"model": model, "cwd": workdir}}), &mut ordinal));
        let mut prompt = format!("implement feature {}", self.below(1000));
        let plant = self.begin_prose(6);
        if self.prose {
            prompt = format!("{prompt}: {}", self.said(&id, 0, plant, 12));
        }
        lines.push(line(json!({"timestamp": stamp(t), "type": "response_item", "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}}), &mut ordinal));
        let mut total = base;
        for r in 0..1 + self.below(5) {
            let at = self.pause(5, 60);
            if self.prose {
                let words = 40 + self.below(80);
                let answer = self.said(&id, r + 1, plant, words);
                lines.push(line(json!({"timestamp": stamp(at), "type": "response_item", "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}}), &mut ordinal));
                lines.push(line(json!({"timestamp": stamp(at), "type": "event_msg", "payload": {"type": "agent_message", "message": answer}}), &mut ordinal));
            }
            let cached = self.below(30000);
            let last = [
                cached + 1 + self.below(5000),
                cached,
                self.below(200),
                10 + self.below(900),
                self.below(50),
            ];
            for (k, v) in last.iter().enumerate() {
                total[k] += v;
            }
            if self.padding > 0 {
                let output = self.filler();
                lines.push(line(json!({"timestamp": stamp(at), "type": "response_item", "payload": {"type": "function_call_output", "call_id": "call_1", "output": output}}), &mut ordinal));
            }
            let count = json!({"timestamp": stamp(at), "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": codex_usage(&total), "last_token_usage": codex_usage(&last), "model_context_window": 258400}, "rate_limits": null}});
            lines.push(line(count.clone(), &mut ordinal));
            if self.chance(30) {
                // Emitted again: adds nothing.
                lines.push(line(count, &mut ordinal));
            }
            if self.chance(20) {
                lines.push(line(json!({"timestamp": stamp(at), "type": "event_msg", "payload": {"type": "token_count", "info": null, "rate_limits": {"primary": null}}}), &mut ordinal));
            }
            self.truth.push(Truth {
                cli: Cli::Codex,
                conversation: id.clone(),
                at,
                model: model.into(),
                input: last[0],
                output: last[3],
                cached: last[1],
            });
        }
        let compressed = where_ != 0 && self.chance(30);
        let path = if compressed {
            let path = dir.join(format!("{name}.zst"));
            std::fs::create_dir_all(&dir).unwrap();
            let text = lines.join("\n") + "\n";
            std::fs::write(&path, zstd::stream::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
            path
        } else {
            let path = dir.join(name);
            write_lines(&path, &lines);
            path
        };
        let w = Written {
            cli: Cli::Codex,
            id,
            path,
            workdir,
            prompt,
        };
        self.written.push(w.clone());
        w
    }

    /// Append one more request to a Codex rollout (`codex exec resume`): returns it.
    pub fn codex_resume(&mut self, w: &Written) -> Truth {
        let text = std::fs::read_to_string(&w.path).expect("a plain rollout");
        let mut ordinal = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["ordinal"].as_u64())
            .max()
            .map_or(0, |o| o + 1);
        let mut total = codex_final_total(&w.path);
        let at = self.tick();
        let model = "gpt-6.1-sol";
        let last = [
            1000 + self.below(5000),
            self.below(1000),
            0,
            10 + self.below(900),
            self.below(50),
        ];
        for (k, v) in last.iter().enumerate() {
            total[k] += v;
        }
        let mut line = |v: Value| {
            let mut v = v;
            v["ordinal"] = json!(ordinal);
            ordinal += 1;
            v.to_string()
        };
        let count = json!({"timestamp": stamp(at), "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": codex_usage(&total), "last_token_usage": codex_usage(&last), "model_context_window": 258400}, "rate_limits": null}});
        let lines = [
            line(
                json!({"timestamp": stamp(at), "type": "turn_context", "payload": {"model": model, "cwd": w.workdir}}),
            ),
            line(
                json!({"timestamp": stamp(at), "type": "event_msg", "payload": {"type": "user_message", "message": "and again"}}),
            ),
            line(count.clone()),
            // Emitted again: adds nothing.
            line(count),
        ];
        append_lines(&w.path, &lines);
        let t = Truth {
            cli: Cli::Codex,
            conversation: w.id.clone(),
            at,
            model: model.into(),
            input: last[0],
            output: last[3],
            cached: last[1],
        };
        self.truth.push(t.clone());
        t
    }

    // ----- Gemini CLI -------------------------------------------------------------------------

    /// A Gemini chat: JSONL with `$set` history copies, or a legacy `.json` record.
    pub fn gemini_conversation(&mut self) -> Written {
        let id = self.uuid();
        let n = self.below(5);
        let workdir = format!("/home/dev/gem-{n}");
        let slug = format!("gem-{n}");
        self.register_gemini_project(&workdir, &slug);
        let t = self.tick();
        let chats = self.gemini_root().join("tmp").join(&slug).join("chats");
        let mut prompt = format!("explain {}", self.below(1000));
        let plant = self.begin_prose(5);
        if self.prose {
            prompt = format!("{prompt}: {}", self.said(&id, 0, plant, 12));
        }
        let model = ["gemini-2.5-pro", "gemini-2.5-flash"][self.below(2) as usize];
        let legacy = self.chance(15);
        let mut messages: Vec<Value> = vec![
            json!({"id": self.uuid(), "timestamp": stamp(t), "type": "user", "content": [{"text": "<session_context>\nThis is the Gemini CLI."}]}),
        ];
        messages.push(json!({"id": self.uuid(), "timestamp": stamp(t), "type": "user", "content": [{"text": prompt}]}));
        let mut lines: Vec<String> = vec![json!({"sessionId": id, "projectHash": "x", "startTime": stamp(t), "lastUpdated": stamp(t), "kind": "main"}).to_string()];
        lines.extend(messages.iter().map(Value::to_string));
        for r in 0..1 + self.below(4) {
            let at = self.pause(3, 30);
            let words = 40 + if self.prose { self.below(80) } else { 0 };
            let text = self.said(&id, r + 1, plant, words);
            let cached = self.below(3000);
            let (input, output, thoughts, tool) = (
                cached + self.below(9000),
                1 + self.below(400),
                self.below(60),
                self.below(3),
            );
            let tokens = json!({"input": input, "output": output, "cached": cached, "thoughts": thoughts, "tool": tool, "total": input + output + thoughts + tool});
            let mid = self.uuid();
            let mut answer = json!({"id": mid, "timestamp": stamp(at), "type": "gemini", "content": text, "thoughts": [], "tokens": tokens, "model": model});
            if self.padding > 0 {
                answer["toolCalls"] =
                    json!([{"name": "read_file", "result": [{"text": self.filler()}]}]);
            }
            if !legacy && self.chance(40) {
                // First without tokens, then again with them.
                let mut early = answer.clone();
                early["tokens"] = Value::Null;
                lines.push(early.to_string());
            }
            lines.push(answer.to_string());
            let mut copy = answer.clone();
            for key in ["tokens", "model", "toolCalls"] {
                copy.as_object_mut().unwrap().remove(key);
            }
            messages.push(copy);
            if !legacy && self.chance(50) {
                // 0.61: the whole history again, answers without their tokens.
                lines.push(
                    json!({"$set": {"messages": messages, "lastUpdated": stamp(at)}}).to_string(),
                );
            }
            self.truth.push(Truth {
                cli: Cli::Gemini,
                conversation: id.clone(),
                at,
                model: model.into(),
                input: input + tool,
                output: output + thoughts,
                cached,
            });
            if legacy {
                let last = messages.len() - 1;
                messages[last] = answer;
            }
        }
        let short = &id[..8];
        let path = if legacy {
            let path = chats.join(format!(
                "session-{}-{short}.json",
                t.format("%Y-%m-%dT%H-%M")
            ));
            std::fs::create_dir_all(&chats).unwrap();
            let record = json!({"sessionId": id, "projectHash": "x", "startTime": stamp(t), "lastUpdated": stamp(self.clock), "messages": messages});
            std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
            path
        } else {
            let path = chats.join(format!(
                "session-{}-{short}.jsonl",
                t.format("%Y-%m-%dT%H-%M")
            ));
            write_lines(&path, &lines);
            path
        };
        let w = Written {
            cli: Cli::Gemini,
            id,
            path,
            workdir,
            prompt,
        };
        self.written.push(w.clone());
        w
    }

    /// Append one more answer to a Gemini JSONL chat (`gemini --resume`): the metadata line
    /// again, the prompt, the answer first without tokens then with them, and the history
    /// copied without tokens. Returns it.
    pub fn gemini_resume(&mut self, w: &Written) -> Truth {
        let at = self.tick();
        let model = "gemini-2.5-pro";
        let (cached, input, output, thoughts) = (
            self.below(3000),
            3000 + self.below(9000),
            1 + self.below(400),
            self.below(60),
        );
        let tokens = json!({"input": input, "output": output, "cached": cached, "thoughts": thoughts, "tool": 0, "total": input + output + thoughts});
        let (uid, mid) = (self.uuid(), self.uuid());
        let prompt = json!({"id": uid, "timestamp": stamp(at), "type": "user", "content": [{"text": "and again"}]});
        let answer = json!({"id": mid, "timestamp": stamp(at), "type": "gemini", "content": "ok", "thoughts": [], "tokens": tokens, "model": model});
        let mut early = answer.clone();
        early["tokens"] = Value::Null;
        let mut copy = answer.clone();
        copy.as_object_mut().unwrap().remove("tokens");
        let lines = [
            json!({"sessionId": w.id, "projectHash": "x", "startTime": stamp(at), "lastUpdated": stamp(at), "kind": "main"}).to_string(),
            prompt.to_string(),
            early.to_string(),
            answer.to_string(),
            json!({"$set": {"messages": [prompt, copy], "lastUpdated": stamp(at)}}).to_string(),
        ];
        append_lines(&w.path, &lines);
        let t = Truth {
            cli: Cli::Gemini,
            conversation: w.id.clone(),
            at,
            model: model.into(),
            input,
            output: output + thoughts,
            cached,
        };
        self.truth.push(t.clone());
        t
    }

    fn register_gemini_project(&self, workdir: &str, slug: &str) {
        let path = self.gemini_root().join("projects.json");
        let mut registry: Value = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({"projects": {}}));
        registry["projects"][workdir] = json!(slug);
        std::fs::create_dir_all(self.gemini_root()).unwrap();
        std::fs::write(&path, serde_json::to_vec_pretty(&registry).unwrap()).unwrap();
    }
}

/// Claude's project directory name: every character but letters and digits as `-`.
pub fn sanitize(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn claude_truth(id: &str, at: DateTime<Utc>, model: &str, usage: &Value) -> Truth {
    let n = |k: &str| usage[k].as_u64().unwrap_or(0);
    Truth {
        cli: Cli::Claude,
        conversation: id.to_string(),
        at,
        model: model.into(),
        input: n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"),
        output: n("output_tokens"),
        cached: n("cache_read_input_tokens"),
    }
}

/// [input, cached, cache_write, output, reasoning] as Codex writes them.
fn codex_usage(u: &[u64; 5]) -> Value {
    json!({"input_tokens": u[0], "cached_input_tokens": u[1], "cache_write_input_tokens": u[2],
           "output_tokens": u[3], "reasoning_output_tokens": u[4], "total_tokens": u[0] + u[3]})
}

/// The running total at the end of a rollout the generator wrote.
fn codex_final_total(path: &Path) -> [u64; 5] {
    let bytes = std::fs::read(path).unwrap();
    let text = if path.extension().is_some_and(|e| e == "zst") {
        String::from_utf8(zstd::stream::decode_all(&bytes[..]).unwrap()).unwrap()
    } else {
        String::from_utf8(bytes).unwrap()
    };
    let mut total = [0u64; 5];
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let t = &v["payload"]["info"]["total_token_usage"];
        if t.is_object() {
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            total = [
                n("input_tokens"),
                n("cached_input_tokens"),
                n("cache_write_input_tokens"),
                n("output_tokens"),
                n("reasoning_output_tokens"),
            ];
        }
    }
    total
}

pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn append_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
}

/// A Claude Code transcript of `said` ((role, text) in order, a minute apart from `start`),
/// in the CLI's own layout under `user_home` (HOME). Returns its path.
pub fn claude_chat(user_home: &Path, id: &str, start: &str, said: &[(&str, &str)]) -> PathBuf {
    let dir = user_home.join(".claude/projects/-w");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{id}.jsonl"));
    std::fs::write(&path, claude_lines(id, start, said)).unwrap();
    path
}

pub fn claude_lines(id: &str, start: &str, said: &[(&str, &str)]) -> String {
    let start: chrono::DateTime<chrono::Utc> = start.parse().unwrap();
    let mut out = String::new();
    for (n, (role, text)) in said.iter().enumerate() {
        let at = (start + chrono::Duration::minutes(n as i64)).to_rfc3339();
        let line = if *role == "user" {
            json!({"type": "user", "sessionId": id, "cwd": "/w", "timestamp": at,
                   "message": {"role": "user", "content": text}})
        } else {
            json!({"type": "assistant", "sessionId": id, "cwd": "/w", "timestamp": at,
                   "requestId": format!("r{n}"),
                   "message": {"id": format!("m{n}"), "model": "claude-sonnet-4-6",
                               "content": [{"type": "text", "text": text}],
                               "usage": {"input_tokens": 10, "output_tokens": 5}}})
        };
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// A session id shaped like the CLIs' (a UUID), numbered.
pub fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}
