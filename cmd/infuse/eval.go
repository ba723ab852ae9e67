package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

func init() {
	register("eval", "complete every task of a JSONL file {task_id, prompt, suffix}; resumes", runEval)
}

type evalTask struct {
	TaskID string `json:"task_id"`
	Prompt string `json:"prompt"`
	Suffix string `json:"suffix"`
}

type evalResult struct {
	TaskID     string  `json:"task_id"`
	Completion string  `json:"completion"`
	NFE        int     `json:"nfe"`
	Tokens     int     `json:"tokens"`
	Millis     float64 `json:"ms"`
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	eo := addEngineFlags(fs)
	in := fs.String("in", "", "tasks, one JSON object per line")
	out := fs.String("out", "", "results, one JSON object per line (appended to; finished tasks are skipped)")
	mode := fs.String("mode", "auto", "single-line, multi-line or auto")
	maxTokens := fs.Int("max-tokens", 0, "span length in tokens (default: by mode)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" || fs.NArg() > 0 {
		return usageErr("want --in TASKS.jsonl --out OUT.jsonl")
	}
	m, ok := infill.ParseMode(*mode)
	if !ok {
		return usageErr("--mode %q: want single-line, multi-line or auto", *mode)
	}
	tasks, err := readTasks(*in)
	if err != nil {
		return err
	}
	done, err := finishedTasks(*out)
	if err != nil {
		return err
	}
	eng, err := loadCompleter(ctx, *eo)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()

	todo := 0
	for _, t := range tasks {
		if !done[t.TaskID] {
			todo++
		}
	}
	fmt.Fprintf(stderr, "eval: %d tasks, %d done, %d to go\n", len(tasks), len(tasks)-todo, todo)
	start, ran, nfe, toks := time.Now(), 0, 0, 0
	last := time.Time{}
	for _, t := range tasks {
		if done[t.TaskID] {
			continue
		}
		t0 := time.Now()
		res, err := eng.Complete(ctx, infill.Request{Prefix: t.Prompt, Suffix: t.Suffix, Mode: m, MaxTokens: *maxTokens})
		if err != nil {
			return fmt.Errorf("task %s: %w", t.TaskID, err)
		}
		line, _ := json.Marshal(evalResult{TaskID: t.TaskID, Completion: res.Text, NFE: res.Figures.NFE,
			Tokens: res.Figures.Tokens, Millis: float64(time.Since(t0).Microseconds()) / 1000})
		if _, err := f.Write(append(line, '\n')); err != nil {
			return err
		}
		done[t.TaskID] = true
		ran++
		nfe += res.Figures.NFE
		toks += res.Figures.Tokens
		if time.Since(last) > time.Second || ran == todo {
			last = time.Now()
			per := time.Since(start) / time.Duration(ran)
			fmt.Fprintf(stderr, "\reval: %d/%d  %.0f ms/task  %.2f tokens/forward  eta %s   ",
				ran, todo, float64(per.Microseconds())/1000, float64(toks)/float64(max(nfe, 1)),
				(per * time.Duration(todo-ran)).Round(time.Second))
		}
	}
	fmt.Fprintln(stderr)
	return nil
}

func readTasks(path string) ([]evalTask, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tasks []evalTask
	seen := map[string]bool{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var t evalTask
		if err := json.Unmarshal(line, &t); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n+1, err)
		}
		if t.TaskID == "" {
			return nil, fmt.Errorf("%s:%d: task has no task_id", path, n+1)
		}
		if seen[t.TaskID] {
			return nil, fmt.Errorf("%s:%d: task_id %q appears twice", path, n+1, t.TaskID)
		}
		seen[t.TaskID] = true
		tasks = append(tasks, t)
	}
	return tasks, nil
}

// finishedTasks reads the ids already in out. A last line cut short by an
// interrupted run is removed from the file, so that it is redone.
func finishedTasks(path string) (map[string]bool, error) {
	done := map[string]bool{}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var good int64
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 { // cut short by an interrupted run: redo it
				return done, f.Truncate(good)
			}
			return done, nil
		}
		if err != nil {
			return nil, err
		}
		var res evalResult
		if err := json.Unmarshal(line, &res); err != nil || res.TaskID == "" {
			return nil, fmt.Errorf("%s:%d: not a result line (remove it or start a new file)", path, n)
		}
		done[res.TaskID] = true
		good += int64(len(line))
	}
}
