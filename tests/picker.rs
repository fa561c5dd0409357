//! The picker (`clinvk sessions pick`, `clinvk resume` without an id) in a real pseudo-terminal:
//! keys typed as a terminal sends them, the screen read through a terminal emulator.

#[macro_use]
#[allow(unused_macros)]
mod common;

use common::native::{claude_chat, uuid};
use common::pty::{Pty, DOWN, ENTER, ESC, UP};
use common::*;

/// A home with three conversations, the newest last.
fn three_chats() -> Home {
    let home = Home::new();
    claude_chat(
        home.user_home(),
        &uuid(1),
        "2025-01-20T10:00:00Z",
        &[
            ("user", "use a token bucket for the limiter"),
            ("assistant", "A token bucket refills at a fixed rate."),
        ],
    );
    claude_chat(
        home.user_home(),
        &uuid(2),
        "2025-01-22T10:00:00Z",
        &[
            ("user", "why is the build slow"),
            ("assistant", "The cache is cold."),
        ],
    );
    claude_chat(
        home.user_home(),
        &uuid(3),
        "2025-01-24T10:00:00Z",
        &[("user", "rename the parser module")],
    );
    home
}

fn pick(home: &Home, cols: u16, rows: u16) -> Pty {
    let mut cmd = home.std_cmd();
    cmd.args(["sessions", "pick"]);
    Pty::spawn(cmd, cols, rows)
}

/// The column where `text` starts on the screen line that has it.
fn column_of(screen: &str, text: &str) -> usize {
    let line = screen
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("{text:?} not on screen:\n{screen}"));
    line[..line.find(text).unwrap()].chars().count()
}

#[test]
fn pick_filters_as_one_types_and_prints_the_chosen_id() {
    let home = three_chats();
    let mut pty = pick(&home, 80, 24);
    let screen = pty.wait_until(
        |s| s.contains("Esc cancel") && s.contains(&uuid(3)),
        "the first screen",
    );
    // Newest first, columns aligned, the first selected with its preview, the keys below.
    let titles = [
        "rename the parser module",
        "why is the build slow",
        "use a token bucket",
    ];
    let at: Vec<usize> = titles.iter().map(|t| column_of(&screen, t)).collect();
    assert!(at.iter().all(|c| *c == at[0]), "{screen}");
    assert_eq!(column_of(&screen, "TITLE/PROMPT"), at[0], "{screen}");
    let rows: Vec<usize> = titles
        .iter()
        .map(|t| screen.lines().position(|l| l.contains(t)).unwrap())
        .collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "{screen}");
    assert!(screen.contains(" 1 of 3 "), "{screen}");
    assert!(
        screen.contains(&uuid(3)),
        "the preview names the whole id:\n{screen}"
    );
    assert!(screen.contains("Esc cancel"), "{screen}");
    assert_eq!(screen.lines().count(), 24, "{screen}");

    // Typing narrows by what was said (an answer here), the preview showing where.
    pty.send("refills");
    // (A frame may arrive in parts: wait for all of it.)
    pty.wait_until(
        |s| {
            s.contains("Pick: refills")
                && s.contains(" 1 of 1 ")
                && s.contains("use a token bucket")
                && !s.contains("why is the build slow")
                && s.contains("Matching lines")
                && s.contains("A token bucket refills at a fixed rate.")
        },
        "one session, with the matching line in its preview",
    );
    // (A frame may still be arriving: the query as typed plain, the match in the preview bold.)
    pty.wait_until(
        |_| pty.bolds("refills") == [false, true],
        "the match in the preview in bold",
    );
    pty.send("zzz");
    pty.wait_for("no sessions match");
    // Back to all of them (Ctrl-U clears the query), then the second one.
    pty.send("\x15");
    pty.wait_for(" 1 of 3 ");
    pty.send(DOWN);
    pty.send(DOWN);
    pty.wait_for(" 3 of 3 ");
    pty.send(UP);
    pty.wait_for(" 2 of 3 ");
    pty.send(ENTER);
    let (code, out) = pty.finish();
    assert_eq!((code, out), (0, format!("{}\n", uuid(2))));
}

#[test]
fn esc_cancels_with_130_and_prints_nothing() {
    let home = three_chats();
    let mut pty = pick(&home, 80, 24);
    pty.wait_for("TITLE/PROMPT");
    pty.send(ESC);
    let (code, out) = pty.finish();
    assert_eq!((code, out.as_str()), (130, ""));
    // The terminal is given back: the alternate screen left, the cursor shown, the message.
    let raw = String::from_utf8_lossy(&pty.wait_raw("No session chosen.")).to_string();
    let (enter, leave) = (raw.find("\x1b[?1049h"), raw.rfind("\x1b[?1049l"));
    assert!(enter.is_some() && leave > enter, "{raw:?}");
    assert!(raw[leave.unwrap()..].contains("\x1b[?25h"), "{raw:?}");
    assert!(pty.cooked(), "the terminal is left in raw mode");
}

#[test]
fn a_signal_while_open_puts_the_terminal_back() {
    let home = three_chats();
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let mut pty = pick(&home, 80, 24);
        pty.wait_for("Esc cancel");
        assert!(!pty.cooked(), "raw while open");
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pty.pid() as i32, signal) };
        let (got, out) = pty.finish();
        assert_eq!((got, out.as_str()), (code, ""), "signal {signal}");
        pty.wait_raw("\x1b[?1049l");
        assert!(pty.cooked(), "raw mode left after signal {signal}");
    }
}

#[test]
fn a_paste_is_typed_text_and_chooses_nothing() {
    let home = three_chats();
    let mut pty = pick(&home, 80, 24);
    pty.wait_for("Esc cancel");
    // Asked of the terminal (so that it marks pastes), and a paste as terminals then send it:
    // the newline in it is not Enter.
    assert!(String::from_utf8_lossy(&pty.raw()).contains("\x1b[?2004h"));
    pty.send("\x1b[200~token\nbucket\x1b[201~");
    pty.wait_until(
        |s| s.contains("Pick: token bucket") && s.contains(" 1 of 1 "),
        "the pasted words as the query",
    );
    pty.send(ENTER);
    assert_eq!(pty.finish(), (0, format!("{}\n", uuid(1))));
}

#[test]
fn redrawn_on_resize_with_the_preview_beside_or_below() {
    let home = three_chats();
    let mut pty = pick(&home, 80, 24);
    let narrow = pty.wait_for("TITLE/PROMPT");
    let below = |screen: &str| {
        let lines: Vec<&str> = screen.lines().collect();
        lines.len() > 2 && !lines[1].contains("Preview") && screen.contains("Preview")
    };
    assert!(below(&narrow), "{narrow}");
    pty.resize(140, 30);
    let wide = pty.wait_until(
        |s| s.lines().nth(1).is_some_and(|l| l.contains("Preview")),
        "the preview beside the list",
    );
    assert_eq!(wide.lines().count(), 30, "{wide}");
    pty.resize(80, 24);
    pty.wait_until(below, "the preview below the list again");
    pty.send(ESC);
    assert_eq!(pty.finish().0, 130);
}

#[test]
fn the_selected_row_stays_on_screen() {
    let home = Home::new();
    for i in 0..40u32 {
        home.add(
            &session(&format!("s{i:02}"))
                .prompt(&format!("prompt number {i:02}"))
                .used_ago(chrono::Duration::minutes(i64::from(i) + 1)),
        );
    }
    let mut pty = pick(&home, 80, 24);
    pty.wait_until(
        |s| s.contains(" 1 of 40 ") && s.contains("prompt number 00"),
        "the newest first",
    );
    // End: the last (oldest) one, scrolled to.
    pty.send("\x1b[F");
    pty.wait_until(
        |s| {
            s.contains(" 40 of 40 ")
                && s.contains("prompt number 39")
                && !s.contains("prompt number 00")
        },
        "the last row selected and scrolled to",
    );
    pty.send(ENTER);
    assert_eq!(pty.finish(), (0, "s39\n".to_string()));
}

#[test]
fn resume_picks_then_asks_for_the_prompt_and_resumes_that_session() {
    let f = Fakes::new();
    let dir = f.dir("p");
    let first = f
        .at(&dir)
        .args(["-b", "claude", "--json", "the first task"])
        .env("CLINVK_NOW", "2025-01-27T10:00:00Z")
        .ok()
        .run
        .session_id();
    f.at(&dir)
        .args(["-b", "claude", "--json", "the second task"])
        .env("CLINVK_NOW", "2025-01-27T11:00:00Z")
        .ok();
    let cmd = f.at(&dir).args(["resume"]);
    let log = cmd.log.clone();
    let mut pty = Pty::spawn(cmd.cmd, 80, 24);
    pty.wait_for("the first task");
    pty.send("first");
    pty.wait_for(" 1 of 1 ");
    pty.send(ENTER);
    pty.wait_for("Prompt");
    pty.send("carry on");
    pty.send(ENTER);
    let (code, _) = pty.finish();
    assert_eq!(code, 0, "{}", pty.screen());
    let calls = fake_calls(&log);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let bsid = f.home.read_session(&first)["backend_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        calls[0].argv.iter().any(|a| a.contains(&bsid)),
        "{:?}",
        calls[0].argv
    );
    assert!(
        calls[0].has("carry on") || calls[0].stdin.contains("carry on"),
        "{:?}",
        calls[0]
    );
}

#[test]
fn resume_cancelled_in_the_picker_calls_nothing() {
    let f = Fakes::new();
    let dir = f.dir("p");
    f.at(&dir).args(["-b", "codex", "--json", "a task"]).ok();
    let cmd = f.at(&dir).args(["resume", "-i"]);
    let log = cmd.log.clone();
    let mut pty = Pty::spawn(cmd.cmd, 80, 24);
    pty.wait_for("a task");
    pty.send(ESC);
    assert_eq!(pty.finish().0, 130);
    assert!(fake_calls(&log).is_empty());
}

#[test]
fn without_a_terminal_the_picker_refuses_at_once() {
    let home = three_chats();
    let run = home.run(&["sessions", "pick"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line().contains("needs a terminal"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // Nothing to pick from: said, on a terminal too.
    let empty = Home::new();
    let mut cmd = empty.std_cmd();
    cmd.args(["sessions", "pick", "--backend", "gemini"]);
    let mut pty = Pty::spawn(cmd, 80, 24);
    let (code, _) = pty.finish();
    assert_eq!(code, 3);
}

#[test]
fn search_marks_matches_in_bold_on_a_terminal_unless_no_color() {
    let home = three_chats();
    let mut cmd = home.std_cmd();
    cmd.args(["sessions", "search", "refills"]);
    let mut pty = Pty::spawn(cmd, 100, 24);
    let (code, out) = pty.finish();
    assert_eq!(code, 0);
    // stdout is the pipe here: plain.
    assert!(!out.contains('\x1b'), "{out:?}");
    // stdout on the terminal: bold, and plain again with NO_COLOR.
    for (no_color, bold) in [(None, true), (Some("1"), false)] {
        let mut cmd = home.std_cmd();
        cmd.args(["sessions", "search", "refills"]);
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let mut pty = Pty::on_terminal_stdout(cmd, 100, 24);
        pty.wait_for("A token bucket refills");
        assert_eq!(pty.finish().0, 0);
        assert_eq!(pty.bolds("refills"), [bold], "NO_COLOR={no_color:?}");
    }
}
