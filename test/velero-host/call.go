package main

// Single-call mode: launch the plugin as Velero does, dispense one named item action, call
// Execute once with the caller's JSON documents (and, for a backup action that returns an
// operationID, Progress once), shut the plugin down as Velero does, and write what happened to
// -out for an end-to-end test to assert on. With -also-item (backup only), Execute is called on
// each further item at the same time, in the same plugin process, as Velero's item-block workers
// (--item-block-worker-count) call it.
//
// With -call restore, -progress-of ID calls Progress(ID, the -restore doc) instead of Execute,
// and -cancel-of ID calls Cancel: Velero's restore operations controller does so every 10 s, and
// on the operation's timeout, from a plugin process that never saw the Execute. -item is then
// not needed.
//
// Exit status: 0 when the call was made and the result written (whatever the plugin returned),
// 1 when the harness could not do that (the plugin did not start or complete the handshake,
// dispense failed, a log line would have crashed go-plugin, -out could not be written), 2 on
// usage errors. On status 1 the result file is still written when possible, with harnessError.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"velerogen/biav2"
	"velerogen/generated"
	"velerogen/riav2"
)

type callOptions struct {
	call, pluginName      string
	item, backup, restore string
	itemFromBackup, out   string
	progressOf, cancelOf  string // restore: an operationID to ask Progress or Cancel for
	alsoItems             fileList
	timeout               time.Duration
}

// fileList is a repeatable file flag.
type fileList []string

func (f *fileList) String() string { return fmt.Sprint(*f) }

func (f *fileList) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// callFlags are the flags that only make sense with -call.
var callFlags = map[string]bool{
	"plugin-name": true, "item": true, "backup": true, "restore": true,
	"item-from-backup": true, "out": true, "timeout": true, "also-item": true,
	"progress-of": true, "cancel-of": true,
}

// any reports whether a single-call flag was given on the command line.
func (c *callOptions) any() bool {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if callFlags[f.Name] {
			set = true
		}
	})
	return set
}

// resourceRef is a generated.ResourceIdentifier as written to the result.
type resourceRef struct {
	Group     string `json:"group"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// callResult is the -out document.
type callResult struct {
	// OK: the call (Execute, or Progress/Cancel with -progress-of/-cancel-of) returned without a
	// gRPC error. Error and Code: the gRPC status message and code name otherwise.
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Code  string `json:"code"`
	// Item is the returned item as JSON (null for delete, or when the plugin returned no bytes
	// or bytes that are not JSON); ItemProblem says what is wrong with it for Velero, if anything.
	Item                        json.RawMessage `json:"item"`
	ItemProblem                 string          `json:"itemProblem"`
	AdditionalItems             []resourceRef   `json:"additionalItems"`
	PostOperationItems          []resourceRef   `json:"postOperationItems"`
	OperationID                 string          `json:"operationID"`
	SkipRestore                 bool            `json:"skipRestore"`
	WaitForAdditionalItems      bool            `json:"waitForAdditionalItems"`
	AdditionalItemsReadyTimeout string          `json:"additionalItemsReadyTimeout"`
	ExecuteMs                   int64           `json:"executeMs"` // of the call made, whichever it was
	// Progress: a BackupItemActionV2's answer to Progress on the operationID Execute returned,
	// asked once as Velero asks every operation once all items are backed up; or, with
	// -progress-of, the RestoreItemActionV2's answer. Null otherwise.
	Progress *progressResult `json:"progress"`
	// Logs: every stderr line that is a JSON object, verbatim and in order; StderrOther: the
	// other lines. LogViolations: every line breaking the rules Velero needs (stderr.go), the
	// non-JSON lines included.
	Logs          []json.RawMessage `json:"logs"`
	StderrOther   []string          `json:"stderrOther"`
	LogViolations []string          `json:"logViolations"`
	// Concurrent: the Execute calls on the -also-item items, in their order.
	Concurrent []concurrentResult `json:"concurrent"`
	// ExitCode of the plugin process (-1 if a signal ended it, null if it never ran);
	// Shutdown is "" when it exited 0 within 2 s of Shutdown, as Velero expects, and otherwise
	// says what happened.
	ExitCode     *int   `json:"exitCode"`
	Shutdown     string `json:"shutdown"`
	HarnessError string `json:"harnessError,omitempty"`
}

// progressResult: what Progress answered, every field Velero copies from OperationProgress
// (Started, Updated: RFC 3339, omitted when unset), and Error: its gRPC status message, if it failed.
type progressResult struct {
	Completed      bool   `json:"completed"`
	Err            string `json:"err"`
	NCompleted     int64  `json:"nCompleted"`
	NTotal         int64  `json:"nTotal"`
	OperationUnits string `json:"operationUnits"`
	Description    string `json:"description"`
	Started        string `json:"started,omitempty"`
	Updated        string `json:"updated,omitempty"`
	Error          string `json:"error,omitempty"`
}

func newProgressResult(p *generated.OperationProgress, err error) *progressResult {
	r := &progressResult{
		Completed: p.GetCompleted(), Err: p.GetErr(), NCompleted: p.GetNCompleted(), NTotal: p.GetNTotal(),
		OperationUnits: p.GetOperationUnits(), Description: p.GetDescription(),
	}
	if t := p.GetStarted(); t != nil {
		r.Started = t.AsTime().UTC().Format(time.RFC3339Nano)
	}
	if t := p.GetUpdated(); t != nil {
		r.Updated = t.AsTime().UTC().Format(time.RFC3339Nano)
	}
	if err != nil {
		r.Error = status.Convert(err).Message()
	}
	return r
}

// concurrentResult: what Execute answered for one -also-item item.
type concurrentResult struct {
	OK          bool            `json:"ok"`
	Error       string          `json:"error"`
	Code        string          `json:"code"`
	Item        json.RawMessage `json:"item"`
	ItemProblem string          `json:"itemProblem"`
	ExecuteMs   int64           `json:"executeMs"`
}

// callInputs are the documents sent, marshalled the way Velero marshals them.
type callInputs struct {
	kind                      string
	item, doc, itemFromBackup []byte // doc: the Backup (backup, delete) or the Restore (restore)
	alsoItems                 [][]byte
}

func (c *callOptions) inputs() (*callInputs, error) {
	in := &callInputs{}
	// -backup is accepted but not sent with -call restore: RestoreItemAction gets the Restore.
	docFlag, docFile := "-backup", c.backup
	switch c.call {
	case "backup":
		in.kind = kindBIAv2
	case "delete":
		in.kind = kindDIA
	case "restore":
		in.kind = kindRIAv2
		docFlag, docFile = "-restore", c.restore
	default:
		return nil, fmt.Errorf("-call %q: want backup, delete or restore", c.call)
	}
	operation := c.progressOf != "" || c.cancelOf != ""
	switch {
	case c.pluginName == "":
		return nil, fmt.Errorf("-call needs -plugin-name")
	case operation && c.call != "restore":
		return nil, fmt.Errorf("-progress-of and -cancel-of are for -call restore")
	case c.progressOf != "" && c.cancelOf != "":
		return nil, fmt.Errorf("-progress-of and -cancel-of exclude each other")
	case c.item == "" && !operation:
		return nil, fmt.Errorf("-call needs -item")
	case docFile == "":
		return nil, fmt.Errorf("-call %s needs %s", c.call, docFlag)
	case c.out == "":
		return nil, fmt.Errorf("-call needs -out")
	case c.call != "restore" && (c.restore != "" || c.itemFromBackup != ""):
		return nil, fmt.Errorf("-restore and -item-from-backup are for -call restore")
	case c.call != "backup" && len(c.alsoItems) > 0:
		return nil, fmt.Errorf("-also-item is for -call backup")
	case c.timeout <= 0:
		return nil, fmt.Errorf("-timeout must be positive")
	}
	var err error
	if c.item != "" {
		if in.item, err = readDoc(c.item); err != nil {
			return nil, err
		}
	}
	if in.doc, err = readDoc(docFile); err != nil {
		return nil, err
	}
	for _, file := range c.alsoItems {
		doc, err := readDoc(file)
		if err != nil {
			return nil, err
		}
		in.alsoItems = append(in.alsoItems, doc)
	}
	in.itemFromBackup = in.item
	if c.itemFromBackup != "" {
		if in.itemFromBackup, err = readDoc(c.itemFromBackup); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// readDoc reads a JSON file and re-marshals it as Velero's clients do (encoding/json of the
// unstructured content: compact, keys sorted, HTML characters escaped; numbers kept as written).
// A file that is not JSON is sent verbatim, so that tests can send hostile input.
func readDoc(file string) ([]byte, error) {
	raw, err := ioutil.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v interface{}
	if dec.Decode(&v) != nil || dec.More() {
		return raw, nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw, nil
	}
	return out, nil
}

// resultWriter writes the result once: the main goroutine and the abort path (go-plugin's
// stderr goroutine) may race.
type resultWriter struct {
	mu      sync.Mutex
	path    string
	written bool
}

// write completes r from the process and writes it; returns the exit status to use.
func (w *resultWriter) write(r *callResult, c *stderrCollector, p *pluginProcess, status int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written {
		return 1
	}
	w.written = true
	if c != nil {
		r.Logs, r.StderrOther = c.lines()
		_, r.LogViolations = c.result()
	}
	if p != nil && p.client.Exited() && p.cmd.ProcessState != nil {
		code := p.cmd.ProcessState.ExitCode()
		r.ExitCode = &code
	}
	if r.Logs == nil {
		r.Logs = []json.RawMessage{}
	}
	if r.StderrOther == nil {
		r.StderrOther = []string{}
	}
	if r.LogViolations == nil {
		r.LogViolations = []string{}
	}
	if r.AdditionalItems == nil {
		r.AdditionalItems = []resourceRef{}
	}
	if r.PostOperationItems == nil {
		r.PostOperationItems = []resourceRef{}
	}
	if r.Concurrent == nil {
		r.Concurrent = []concurrentResult{}
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = ioutil.WriteFile(w.path, append(data, '\n'), 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "velero-host: writing %s: %v\n", w.path, err)
		return 1
	}
	return status
}

func runCall(c *callOptions, path string, serverArgs []string, o *options) int {
	in, err := c.inputs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "velero-host: %v\n", err)
		return 2
	}
	o.keepStderr = true
	w := &resultWriter{path: c.out}
	// A line that panics go-plugin's parser would crash Velero; the call cannot go on.
	fatal := func(col *stderrCollector, msg string) {
		killAllLaunched()
		fmt.Fprintf(os.Stderr, "velero-host: %s\n", msg)
		os.Exit(w.write(&callResult{Error: msg, HarnessError: msg}, col, nil, 1))
	}
	harnessFailed := func(p *pluginProcess, format string, args ...interface{}) int {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintf(os.Stderr, "velero-host: %s\n", msg)
		if p.rpc != nil {
			p.shutdown()
		}
		return w.write(&callResult{Error: msg, HarnessError: msg}, p.stderr, p, 1)
	}

	p, err := launch("plugin process", path, serverArgs, o, fatal)
	if err != nil {
		return harnessFailed(p, "%v", err)
	}
	raw, err := p.dispense(in.kind)
	if err != nil {
		return harnessFailed(p, "dispensing %s: %v", in.kind, err)
	}

	r := &callResult{}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	start := time.Now()
	var item []byte
	switch cl := raw.(type) {
	case biav2.BackupItemActionClient:
		concurrent := executeConcurrently(ctx, cl, c.pluginName, in)
		var resp *biav2.ExecuteResponse
		resp, err = cl.Execute(ctx, &biav2.ExecuteRequest{Plugin: c.pluginName, Item: in.item, Backup: in.doc})
		r.Concurrent = concurrent()
		item = resp.GetItem()
		r.AdditionalItems = refs(resp.GetAdditionalItems())
		r.PostOperationItems = refs(resp.GetPostOperationItems())
		r.OperationID = resp.GetOperationID()
		if err == nil && r.OperationID != "" {
			// Velero asks in the same plugin process, after the last item (backup_controller.go).
			p, perr := cl.Progress(ctx, &biav2.BackupItemActionProgressRequest{Plugin: c.pluginName, OperationID: r.OperationID, Backup: in.doc})
			r.Progress = newProgressResult(p.GetProgress(), perr)
		}
	case riav2.RestoreItemActionClient:
		if c.progressOf != "" {
			var resp *riav2.RestoreItemActionProgressResponse
			resp, err = cl.Progress(ctx, &riav2.RestoreItemActionProgressRequest{Plugin: c.pluginName, OperationID: c.progressOf, Restore: in.doc})
			r.Progress = newProgressResult(resp.GetProgress(), err)
			break
		}
		if c.cancelOf != "" {
			_, err = cl.Cancel(ctx, &riav2.RestoreItemActionCancelRequest{Plugin: c.pluginName, OperationID: c.cancelOf, Restore: in.doc})
			break
		}
		var resp *riav2.RestoreItemActionExecuteResponse
		resp, err = cl.Execute(ctx, &riav2.RestoreItemActionExecuteRequest{
			Plugin: c.pluginName, Item: in.item, Restore: in.doc, ItemFromBackup: in.itemFromBackup,
		})
		item = resp.GetItem()
		r.AdditionalItems = refs(resp.GetAdditionalItems())
		r.OperationID = resp.GetOperationID()
		r.SkipRestore = resp.GetSkipRestore()
		r.WaitForAdditionalItems = resp.GetWaitForAdditionalItems()
		if d := resp.GetAdditionalItemsReadyTimeout(); d != nil {
			r.AdditionalItemsReadyTimeout = d.AsDuration().String()
		}
	case generated.DeleteItemActionClient:
		_, err = cl.Execute(ctx, &generated.DeleteItemActionExecuteRequest{Plugin: c.pluginName, Item: in.item, Backup: in.doc})
	default:
		cancel()
		return harnessFailed(p, "dispensing %s returned a %T", in.kind, raw)
	}
	r.ExecuteMs = time.Since(start).Milliseconds()
	cancel()

	if err != nil {
		st := status.Convert(err)
		r.Error, r.Code = st.Message(), st.Code().String()
	} else {
		r.OK = true
		if in.kind != kindDIA && c.progressOf == "" && c.cancelOf == "" {
			r.Item, r.ItemProblem = returnedItem(item)
		}
	}
	if !answered(err) {
		// A transport failure usually means a crash, noticed before go-plugin reaps the process.
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := p.shutdown(); err != nil {
		r.Shutdown = err.Error()
	}
	return w.write(r, p.stderr, p, 0)
}

// executeConcurrently starts Execute on every -also-item item; the returned function waits for
// all of them and gives their results in order.
func executeConcurrently(ctx context.Context, cl biav2.BackupItemActionClient, plugin string, in *callInputs) func() []concurrentResult {
	results := make([]concurrentResult, len(in.alsoItems))
	var wg sync.WaitGroup
	for i, item := range in.alsoItems {
		wg.Add(1)
		go func(r *concurrentResult, item []byte) {
			defer wg.Done()
			start := time.Now()
			resp, err := cl.Execute(ctx, &biav2.ExecuteRequest{Plugin: plugin, Item: item, Backup: in.doc})
			r.ExecuteMs = time.Since(start).Milliseconds()
			if err != nil {
				st := status.Convert(err)
				r.Error, r.Code = st.Message(), st.Code().String()
				return
			}
			r.OK = true
			r.Item, r.ItemProblem = returnedItem(resp.GetItem())
		}(&results[i], item)
	}
	return func() []concurrentResult {
		wg.Wait()
		return results
	}
}

// returnedItem is the item for the result (nil when it is not JSON) and what Velero would
// find wrong with it.
func returnedItem(item []byte) (json.RawMessage, string) {
	if len(item) == 0 {
		return nil, "Execute returned no item bytes"
	}
	_, problem := itemKind(item)
	if !json.Valid(item) {
		return nil, problem.Error()
	}
	if problem != nil {
		return json.RawMessage(item), problem.Error()
	}
	return json.RawMessage(item), ""
}

func refs(ids []*generated.ResourceIdentifier) []resourceRef {
	out := make([]resourceRef, 0, len(ids))
	for _, id := range ids {
		out = append(out, resourceRef{Group: id.GetGroup(), Resource: id.GetResource(), Namespace: id.GetNamespace(), Name: id.GetName()})
	}
	return out
}
