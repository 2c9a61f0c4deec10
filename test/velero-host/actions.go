package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"velerogen/biav2"
	"velerogen/generated"
	"velerogen/riav2"
)

// unknownPlugin is a well-formed name that no plugin should serve; Velero's Go framework
// answers "... plugin: X was not found or has an invalid name format".
const unknownPlugin = "example.io/nope"

// bogusOperationID is polled in addition to any operationID Execute returned: after a restart
// Velero polls IDs the new process has never seen.
const bogusOperationID = "velero-host-unknown-operation"

// action is the kind-independent view of one listed item action, so that BIA v2, RIA v2 and
// DIA run through the same checks. progress/cancel are nil for kinds without them.
type action struct {
	prefix      string // check name prefix: bia, ria, dia
	name        string // plugin name, sent in every request's plugin field
	contextName string // "backup" or "restore": the second document Execute gets
	goodItem    []byte
	goodContext []byte
	// noop expectation: Execute should return exactly this item.
	echoOf []byte

	appliesTo func(ctx context.Context, plugin string) (*generated.ResourceSelector, error)
	// execute returns the output item (hasItem false for kinds whose response has none) and
	// any async operation ID.
	execute  func(ctx context.Context, plugin string, item, doc []byte) (out []byte, hasItem bool, opID string, err error)
	progress func(ctx context.Context, plugin, opID string) (*generated.OperationProgress, error)
	cancel   func(ctx context.Context, plugin, opID string) error
}

type exerciser struct {
	rec *recorder
	p   *pluginProcess
	o   *options
	f   fixtures
}

func (e *exerciser) call(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.o.callTimeout)
	defer cancel()
	return fn(ctx)
}

// exercise runs every call Velero makes on this kind of plugin, plus hostile inputs.
// Returns false if the kind is not one this host drives.
func (e *exerciser) exercise(kind, name string) bool {
	var a *action
	switch kind {
	case kindBIAv2:
		a = e.biaV2(name)
	case kindRIAv2:
		a = e.riaV2(name)
	case kindDIA:
		a = e.dia(name)
	default:
		return false
	}
	if a == nil {
		return true // dispense failed and was reported
	}
	e.checkAppliesTo(a)
	opID := e.checkExecute(a)
	for _, bad := range badInputs(a.goodItem, a.goodContext, a.contextName) {
		e.checkBadInput(a, bad)
	}
	e.checkUnknownPlugin(a)
	if a.progress != nil {
		e.checkProgress(a, opID)
	}
	if a.cancel != nil {
		e.checkCancel(a, opID)
	}
	if kind == kindRIAv2 {
		e.checkItemsReady(name)
	}
	return true
}

func (e *exerciser) dispense(prefix, kind, name string) interface{} {
	raw, err := e.p.dispense(kind)
	if err != nil {
		e.rec.fail(prefix+"-dispense", name, "%v", err)
		return nil
	}
	return raw
}

func (e *exerciser) biaV2(name string) *action {
	raw := e.dispense("bia", kindBIAv2, name)
	if raw == nil {
		return nil
	}
	c := raw.(biav2.BackupItemActionClient)
	return &action{
		prefix: "bia", name: name, contextName: "backup",
		goodItem: e.f.pod, goodContext: e.f.backup, echoOf: e.f.pod,
		appliesTo: func(ctx context.Context, plugin string) (*generated.ResourceSelector, error) {
			r, err := c.AppliesTo(ctx, &biav2.BackupItemActionAppliesToRequest{Plugin: plugin})
			return r.GetResourceSelector(), err
		},
		execute: func(ctx context.Context, plugin string, item, doc []byte) ([]byte, bool, string, error) {
			r, err := c.Execute(ctx, &biav2.ExecuteRequest{Plugin: plugin, Item: item, Backup: doc})
			return r.GetItem(), true, r.GetOperationID(), err
		},
		progress: func(ctx context.Context, plugin, opID string) (*generated.OperationProgress, error) {
			r, err := c.Progress(ctx, &biav2.BackupItemActionProgressRequest{Plugin: plugin, OperationID: opID, Backup: e.f.backup})
			return r.GetProgress(), err
		},
		cancel: func(ctx context.Context, plugin, opID string) error {
			_, err := c.Cancel(ctx, &biav2.BackupItemActionCancelRequest{Plugin: plugin, OperationID: opID, Backup: e.f.backup})
			return err
		},
	}
}

func (e *exerciser) riaV2(name string) *action {
	raw := e.dispense("ria", kindRIAv2, name)
	if raw == nil {
		return nil
	}
	c := raw.(riav2.RestoreItemActionClient)
	return &action{
		prefix: "ria", name: name, contextName: "restore",
		goodItem: e.f.restoredPod, goodContext: e.f.restore, echoOf: e.f.restoredPod,
		appliesTo: func(ctx context.Context, plugin string) (*generated.ResourceSelector, error) {
			r, err := c.AppliesTo(ctx, &riav2.RestoreItemActionAppliesToRequest{Plugin: plugin})
			return r.GetResourceSelector(), err
		},
		execute: func(ctx context.Context, plugin string, item, doc []byte) ([]byte, bool, string, error) {
			r, err := c.Execute(ctx, &riav2.RestoreItemActionExecuteRequest{
				Plugin: plugin, Item: item, Restore: doc, ItemFromBackup: e.f.pod,
			})
			return r.GetItem(), true, r.GetOperationID(), err
		},
		progress: func(ctx context.Context, plugin, opID string) (*generated.OperationProgress, error) {
			r, err := c.Progress(ctx, &riav2.RestoreItemActionProgressRequest{Plugin: plugin, OperationID: opID, Restore: e.f.restore})
			return r.GetProgress(), err
		},
		cancel: func(ctx context.Context, plugin, opID string) error {
			_, err := c.Cancel(ctx, &riav2.RestoreItemActionCancelRequest{Plugin: plugin, OperationID: opID, Restore: e.f.restore})
			return err
		},
	}
}

func (e *exerciser) dia(name string) *action {
	raw := e.dispense("dia", kindDIA, name)
	if raw == nil {
		return nil
	}
	c := raw.(generated.DeleteItemActionClient)
	return &action{
		prefix: "dia", name: name, contextName: "backup",
		goodItem: e.f.pod, goodContext: e.f.backup,
		appliesTo: func(ctx context.Context, plugin string) (*generated.ResourceSelector, error) {
			r, err := c.AppliesTo(ctx, &generated.DeleteItemActionAppliesToRequest{Plugin: plugin})
			return r.GetResourceSelector(), err
		},
		execute: func(ctx context.Context, plugin string, item, doc []byte) ([]byte, bool, string, error) {
			_, err := c.Execute(ctx, &generated.DeleteItemActionExecuteRequest{Plugin: plugin, Item: item, Backup: doc})
			return nil, false, "", err
		},
	}
}

// probe is the cheap follow-up call proving the plugin still serves after a risky one.
func (e *exerciser) probe(a *action) func() error {
	return func() error {
		return e.call(func(ctx context.Context) error {
			_, err := a.appliesTo(ctx, a.name)
			return err
		})
	}
}

func (e *exerciser) checkAppliesTo(a *action) {
	var sel *generated.ResourceSelector
	err := e.call(func(ctx context.Context) (err error) {
		sel, err = a.appliesTo(ctx, a.name)
		return err
	})
	check := a.prefix + "-applies-to"
	switch {
	case err != nil:
		e.rec.fail(check, a.name, "%v", err)
	case sel == nil:
		e.rec.fail(check, a.name, "response has no ResourceSelector")
	case e.o.expectResource != "" && !contains(sel.GetIncludedResources(), e.o.expectResource):
		e.rec.fail(check, a.name, "includedResources %q does not include %q", sel.GetIncludedResources(), e.o.expectResource)
	case e.o.expectSelector && strings.TrimSpace(sel.GetSelector()) == "":
		e.rec.fail(check, a.name, "label selector is empty (the action would run on every %s)", e.o.expectResource)
	default:
		e.rec.pass(check, a.name, "%s", describeSelector(sel))
	}
}

// checkExecute sends realistic input and returns the operation ID, if any.
func (e *exerciser) checkExecute(a *action) string {
	var out []byte
	var hasItem bool
	var opID string
	err := e.call(func(ctx context.Context) (err error) {
		out, hasItem, opID, err = a.execute(ctx, a.name, a.goodItem, a.goodContext)
		return err
	})
	check := a.prefix + "-execute"
	ok := false
	switch {
	case err != nil && e.o.allowExecuteError && e.judge(err) == nil:
		e.rec.pass(check, a.name, "returned an error (allowed by -allow-execute-error): %s", status.Convert(err).Message())
	case err != nil:
		e.rec.fail(check, a.name, "%v", e.crashContext(err, err))
	case !hasItem:
		ok = e.rec.pass(check, a.name, "succeeded")
	default:
		if kind, perr := itemKind(out); perr != nil {
			e.rec.fail(check, a.name, "returned item is unusable: %v", perr)
		} else {
			msg := fmt.Sprintf("item kind %s, %d bytes", kind, len(out))
			if opID != "" {
				msg += fmt.Sprintf(", operationID %q", opID)
			}
			ok = e.rec.pass(check, a.name, "%s", msg)
		}
	}
	if e.o.expectNoop && a.echoOf != nil {
		noop := a.prefix + "-execute-noop"
		switch {
		case !ok:
			e.rec.fail(noop, a.name, "Execute did not return an item")
		case bytes.Equal(out, a.echoOf):
			e.rec.pass(noop, a.name, "item returned byte-equal")
		case jsonEqual(out, a.echoOf):
			e.rec.pass(noop, a.name, "item returned JSON-equal (not byte-equal)")
		default:
			e.rec.fail(noop, a.name, "item was modified (disable with -expect-noop=false): got %s", excerpt(out, 300))
		}
	}
	return opID
}

func (e *exerciser) checkBadInput(a *action, bad badInput) {
	var out []byte
	var hasItem bool
	err := e.call(func(ctx context.Context) (err error) {
		out, hasItem, _, err = a.execute(ctx, a.name, bad.item, bad.context)
		return err
	})
	check := a.prefix + "-execute-bad-" + bad.name
	var verdict error
	outcome := ""
	if err != nil {
		verdict = e.judge(err)
		outcome = fmt.Sprintf("error %q", status.Convert(err).Message())
	} else if hasItem {
		if _, perr := itemKind(out); perr != nil {
			verdict = fmt.Errorf("succeeded but the returned item is unusable: %v", perr)
		}
		outcome = "valid item"
	} else {
		outcome = "success"
	}
	if verdict == nil {
		verdict = e.p.alive(e.probe(a))
	}
	e.rec.verdict(check, a.name, verdict, outcome+", still serving")
}

func (e *exerciser) checkUnknownPlugin(a *action) {
	check := a.prefix + "-unknown-plugin"
	errApplies := e.call(func(ctx context.Context) error {
		_, err := a.appliesTo(ctx, unknownPlugin)
		return err
	})
	errExec := e.call(func(ctx context.Context) error {
		_, _, _, err := a.execute(ctx, unknownPlugin, a.goodItem, a.goodContext)
		return err
	})
	var problems []string
	for _, r := range []struct {
		method string
		err    error
	}{{"AppliesTo", errApplies}, {"Execute", errExec}} {
		if r.err == nil {
			problems = append(problems, fmt.Sprintf("%s for %q succeeded (want a gRPC error)", r.method, unknownPlugin))
		} else if v := e.judge(r.err); v != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", r.method, v))
		}
	}
	if len(problems) == 0 {
		if err := e.p.alive(e.probe(a)); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		e.rec.fail(check, a.name, "%s", strings.Join(problems, "; "))
		return
	}
	e.rec.pass(check, a.name, "error %q", status.Convert(errApplies).Message())
}

// checkProgress: Velero's client dereferences response.progress unconditionally, so a reply
// without it panics inside the Velero server; an error is fine (the operation fails).
func (e *exerciser) checkProgress(a *action, opID string) {
	ids := []string{bogusOperationID}
	if opID != "" {
		ids = append([]string{opID}, ids...)
	}
	var problems, outcomes []string
	for _, id := range ids {
		var p *generated.OperationProgress
		err := e.call(func(ctx context.Context) (err error) {
			p, err = a.progress(ctx, a.name, id)
			return err
		})
		switch {
		case err != nil:
			if v := e.judge(err); v != nil {
				problems = append(problems, fmt.Sprintf("operation %q: %v", id, v))
			} else {
				outcomes = append(outcomes, fmt.Sprintf("%q: error %q", id, status.Convert(err).Message()))
			}
		case p == nil:
			problems = append(problems, fmt.Sprintf("operation %q: response has no progress (nil) – Velero dereferences it and panics", id))
		default:
			outcomes = append(outcomes, fmt.Sprintf("%q: completed=%v err=%q", id, p.GetCompleted(), p.GetErr()))
		}
	}
	if len(problems) == 0 {
		if err := e.p.alive(e.probe(a)); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		e.rec.fail(a.prefix+"-progress", a.name, "%s", strings.Join(problems, "; "))
		return
	}
	e.rec.pass(a.prefix+"-progress", a.name, "%s", strings.Join(outcomes, "; "))
}

// checkCancel: Velero ignores Cancel's result, so only crashes and hangs matter.
func (e *exerciser) checkCancel(a *action, opID string) {
	if opID == "" {
		opID = bogusOperationID
	}
	err := e.call(func(ctx context.Context) error { return a.cancel(ctx, a.name, opID) })
	outcome := "ok"
	var verdict error
	if err != nil {
		verdict = e.judge(err)
		outcome = fmt.Sprintf("error %q", status.Convert(err).Message())
	}
	if verdict == nil {
		verdict = e.p.alive(e.probe(a))
	}
	e.rec.verdict(a.prefix+"-cancel", a.name, verdict, outcome+", still serving")
}

func (e *exerciser) checkItemsReady(name string) {
	raw, err := e.p.dispense(kindRIAv2)
	if err != nil {
		e.rec.fail("ria-items-ready", name, "%v", err)
		return
	}
	c := raw.(riav2.RestoreItemActionClient)
	var resp *riav2.RestoreItemActionItemsReadyResponse
	err = e.call(func(ctx context.Context) (err error) {
		resp, err = c.AreAdditionalItemsReady(ctx, &riav2.RestoreItemActionItemsReadyRequest{
			Plugin:  name,
			Restore: e.f.restore,
			AdditionalItems: []*generated.ResourceIdentifier{
				{Group: "", Resource: "persistentvolumeclaims", Namespace: "monitoring", Name: "vmsingle-data"},
			},
		})
		return err
	})
	if err != nil {
		e.rec.fail("ria-items-ready", name, "%v", err)
		return
	}
	e.rec.pass("ria-items-ready", name, "ready=%v", resp.GetReady())
}

// appError returns nil if err is an error the plugin itself returned with a usable message,
// and otherwise says why it is not (transport failure, timeout, missing method, no message).
func appError(err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable, codes.Canceled:
		return fmt.Errorf("transport failure, did the plugin crash? (%v)", err)
	case codes.DeadlineExceeded:
		return fmt.Errorf("no answer within the call timeout (%v)", err)
	case codes.Unimplemented:
		return fmt.Errorf("method not implemented (%v)", err)
	}
	if strings.TrimSpace(st.Message()) == "" {
		return fmt.Errorf("gRPC error with code %v has an empty message", st.Code())
	}
	return nil
}

// judge is appError plus, for a transport failure, how the plugin process ended.
func (e *exerciser) judge(err error) error {
	v := appError(err)
	if v == nil {
		return nil
	}
	return e.crashContext(err, v)
}

// crashContext appends the process's exit state to report when rpcErr is a transport failure,
// the usual symptom of a crash. The transport tends to notice before go-plugin reaps the
// process, hence the short grace period.
func (e *exerciser) crashContext(rpcErr, report error) error {
	if answered(rpcErr) {
		return report
	}
	time.Sleep(200 * time.Millisecond)
	if exitErr := e.p.exitState(); exitErr != nil {
		return fmt.Errorf("%v; %v", report, exitErr)
	}
	return report
}

// itemKind checks what Velero needs from a returned item: a JSON object with a kind.
func itemKind(item []byte) (string, error) {
	var v interface{}
	if err := json.Unmarshal(item, &v); err != nil {
		return "", fmt.Errorf("not JSON (%v): %s", err, excerpt(item, 120))
	}
	obj, ok := v.(map[string]interface{})
	if !ok {
		return "", fmt.Errorf("not a JSON object: %s", excerpt(item, 120))
	}
	kind, _ := obj["kind"].(string)
	if kind == "" {
		return "", fmt.Errorf("object has no non-empty string \"kind\": %s", excerpt(item, 120))
	}
	return kind, nil
}

func jsonEqual(a, b []byte) bool {
	var va, vb interface{}
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func describeSelector(sel *generated.ResourceSelector) string {
	parts := []string{fmt.Sprintf("includedResources=%q", sel.GetIncludedResources())}
	if len(sel.GetExcludedResources()) > 0 {
		parts = append(parts, fmt.Sprintf("excludedResources=%q", sel.GetExcludedResources()))
	}
	if len(sel.GetIncludedNamespaces()) > 0 {
		parts = append(parts, fmt.Sprintf("includedNamespaces=%q", sel.GetIncludedNamespaces()))
	}
	if len(sel.GetExcludedNamespaces()) > 0 {
		parts = append(parts, fmt.Sprintf("excludedNamespaces=%q", sel.GetExcludedNamespaces()))
	}
	parts = append(parts, fmt.Sprintf("selector=%q", sel.GetSelector()))
	return strings.Join(parts, " ")
}
