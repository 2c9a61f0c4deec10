// Command velero-host plays the Velero server (the go-plugin host) against a plugin executable
// and checks that the plugin behaves the way Velero needs: handshake, discovery, relaunch by the
// advertised command, the item-action RPCs with realistic and hostile input, the log lines on
// stderr, and a clean exit after Shutdown. It uses the same go-plugin client API as Velero,
// although Debian only packages go-plugin 1.0.1 (Velero uses 1.6/1.7).
//
//	velero-host [flags] -- /path/to/plugin [server flags...]
//
// Checks, in order (per-plugin ones carry the plugin name in the report's "plugin" field):
// handshake, list-plugins, plugin-kinds, plugin-names, plugin-command, discovery-shutdown and
// relaunch (unless -relaunch=false), health, then for each BackupItemActionV2 / RestoreItemActionV2
// / DeleteItemAction (prefix bia / ria / dia): <p>-applies-to, <p>-execute, <p>-execute-noop
// (bia, ria; unless -expect-noop=false), <p>-execute-bad-{item-not-json,item-array,item-no-kind,
// item-empty,backup-empty|restore-empty}, <p>-unknown-plugin, <p>-progress and <p>-cancel (bia,
// ria), ria-items-ready; finally shutdown and stderr-lines (every raw stderr line of every
// process).
//
// Exit status: 0 iff every check passed, 1 if any failed, 2 on usage errors.
//
// Single-call mode (call.go) instead makes one Execute call (or, for a restore operation,
// one Progress or Cancel call), for end-to-end tests:
//
//	velero-host -call backup|delete|restore -plugin-name NAME -item ITEM.json \
//	    [-backup BACKUP.json] [-restore RESTORE.json] [-item-from-backup ITEM2.json] \
//	    -out OUT.json [-timeout 600s] [-v] -- /path/to/plugin [server flags...]
//	velero-host -call restore -plugin-name NAME -progress-of ID|-cancel-of ID -restore RESTORE.json \
//	    -out OUT.json [-timeout 600s] [-v] -- /path/to/plugin [server flags...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// defaultServerArgs imitates what Velero forwards: every flag the `velero server` process got
// (including ones a plugin does not know), appended after the plugin path.
var defaultServerArgs = []string{
	"--features=EnableCSI",
	"--uploader-type=kopia",
	"--default-volumes-to-fs-backup=false",
	"--item-block-worker-count=1",
	"--log-level=info",
	"--some-unknown-flag=x",
}

type options struct {
	relaunch          bool
	report            string
	expectNoop        bool
	allowExecuteError bool
	expectResource    string
	expectSelector    bool
	callTimeout       time.Duration
	verbose           bool
	keepStderr        bool // single-call mode: keep the plugin's stderr lines for the result
}

func main() {
	os.Exit(run())
}

func run() int {
	o := &options{}
	flag.BoolVar(&o.relaunch, "relaunch", true, "after discovery, kill the plugin and relaunch the command it advertised (as Velero does) for the remaining checks")
	flag.StringVar(&o.report, "report", "", "write the JSON report to this `file`")
	flag.BoolVar(&o.expectNoop, "expect-noop", true, "expect Execute to return the input item unchanged")
	flag.BoolVar(&o.allowExecuteError, "allow-execute-error", false, "accept a gRPC error (with a message) from Execute on the realistic input")
	flag.StringVar(&o.expectResource, "expect-resource", "pods", "`resource` AppliesTo must include (empty: no check)")
	flag.BoolVar(&o.expectSelector, "expect-selector", true, "require a non-empty label selector from AppliesTo")
	flag.DurationVar(&o.callTimeout, "call-timeout", 30*time.Second, "per-RPC `timeout` (Velero has none; a hang fails the check)")
	flag.BoolVar(&o.verbose, "v", false, "echo the plugin's raw stderr and go-plugin's debug log")
	c := &callOptions{}
	flag.StringVar(&c.call, "call", "", "single-call mode: make one Execute call of this `kind` (backup, delete or restore) instead of the checks")
	flag.StringVar(&c.pluginName, "plugin-name", "", "single-call mode: the plugin `name` to dispense and call")
	flag.StringVar(&c.item, "item", "", "single-call mode: `file` with the item JSON")
	flag.StringVar(&c.backup, "backup", "", "single-call mode: `file` with the Backup JSON (backup, delete; ignored by restore)")
	flag.StringVar(&c.restore, "restore", "", "single-call mode: `file` with the Restore JSON (restore)")
	flag.StringVar(&c.itemFromBackup, "item-from-backup", "", "single-call mode: `file` with the item as stored in the backup (restore; default: -item)")
	flag.StringVar(&c.out, "out", "", "single-call mode: write the result JSON to this `file`")
	flag.DurationVar(&c.timeout, "timeout", 600*time.Second, "single-call mode: Execute `timeout` (Velero has none)")
	flag.StringVar(&c.progressOf, "progress-of", "", "single-call mode, restore: call Progress on this operation `ID` instead of Execute (no -item needed)")
	flag.StringVar(&c.cancelOf, "cancel-of", "", "single-call mode, restore: call Cancel on this operation `ID` instead of Execute (no -item needed)")
	flag.Var(&c.alsoItems, "also-item", "single-call mode, backup: `file` with a further item to Execute at the same time in the same plugin process (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: velero-host [flags] -- /path/to/plugin [argv...]\n"+
			"       velero-host -call backup|delete|restore -plugin-name NAME -item ITEM.json [-backup BACKUP.json]\n"+
			"           [-restore RESTORE.json] [-item-from-backup ITEM2.json] [-also-item ITEM.json]... -out OUT.json [-timeout 600s] -- /path/to/plugin [argv...]\n"+
			"       velero-host -call restore -plugin-name NAME -progress-of ID|-cancel-of ID -restore RESTORE.json -out OUT.json\n"+
			"           [-timeout 600s] -- /path/to/plugin [argv...]\n\n"+
			"Without argv the plugin gets Velero-like server flags: %s\n\nflags:\n", strings.Join(defaultServerArgs, " "))
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		return 2
	}
	if c.call == "" && c.any() {
		fmt.Fprintln(os.Stderr, "velero-host: -plugin-name, -item, -backup, -restore, -item-from-backup, -also-item, -progress-of, -cancel-of, -out and -timeout need -call")
		return 2
	}
	// Velero execs plugins by absolute path (under /plugins); a relative path would also make
	// a correct plugin fail the absolute-command check.
	path, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "velero-host: %v\n", err)
		return 2
	}
	serverArgs := flag.Args()[1:]
	if len(serverArgs) == 0 {
		serverArgs = defaultServerArgs
	}
	if c.call != "" {
		return runCall(c, path, serverArgs, o)
	}

	rec := &recorder{reportPath: o.report}
	var procs []*pluginProcess
	// Called from go-plugin's stderr goroutine when a line would panic go-plugin's parser.
	fatal := func(_ *stderrCollector, msg string) {
		rec.fail("stderr-lines", "", "%s", msg)
		killAllLaunched()
		os.Exit(rec.finish())
	}
	finish := func() int {
		checkStderr(rec, procs)
		return rec.finish()
	}
	shutdown := func(check string, p *pluginProcess) {
		elapsed, err := p.shutdown()
		rec.verdict(check, "", err, fmt.Sprintf("exited 0 within %v of Shutdown", elapsed.Round(time.Millisecond)))
	}

	role := "discovery process"
	if !o.relaunch {
		role = "plugin process" // one process for the whole run
	}
	p, err := launch(role, path, serverArgs, o, fatal)
	procs = append(procs, p)
	if !rec.verdict("handshake", "", err, fmt.Sprintf("grpc, app protocol 2, %v", p.handshake.Round(time.Millisecond))) {
		return finish()
	}
	ids, err := listPlugins(p, o)
	if err != nil {
		rec.fail("list-plugins", "", "%v", err)
		shutdown("shutdown", p)
		return finish()
	}
	command := checkListing(rec, ids)

	if o.relaunch {
		shutdown("discovery-shutdown", p)
		if command == "" {
			rec.fail("relaunch", "", "no command to relaunch")
			return finish()
		}
		p, err = launch("relaunched process", command, serverArgs, o, fatal)
		procs = append(procs, p)
		if !rec.verdict("relaunch", "", err, fmt.Sprintf("%s: handshake in %v", command, p.handshake.Round(time.Millisecond))) {
			return finish()
		}
	}

	checkHealth(rec, p, o)
	ex := &exerciser{rec: rec, p: p, o: o, f: loadFixtures()}
	seen := map[string]bool{}
	for _, id := range ids {
		key := id.GetKind() + " " + id.GetName()
		if seen[key] {
			continue // duplicates already failed plugin-names
		}
		seen[key] = true
		if ex.exercise(id.GetKind(), id.GetName()) {
			rec.markExercised(id.GetName(), id.GetKind())
		}
	}
	shutdown("shutdown", p)
	return finish()
}

// checkHealth does what go-plugin's GRPCClient.Ping does (grpc.health.v1 Health/Check for
// service "plugin"), but with a timeout and looking at the status, which 1.0.1's Ping ignores.
func checkHealth(rec *recorder, p *pluginProcess, o *options) {
	ctx, cancel := context.WithTimeout(context.Background(), o.callTimeout)
	defer cancel()
	resp, err := grpc_health_v1.NewHealthClient(p.rpc.Conn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	switch {
	case err != nil:
		rec.fail("health", "", "/grpc.health.v1.Health/Check(service %q): %v", plugin.GRPCServiceName, err)
	case resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING:
		rec.fail("health", "", "status %v, want SERVING", resp.GetStatus())
	default:
		rec.pass("health", "", "SERVING")
	}
}

// checkStderr applies the log line rules to everything every process printed. It runs after
// the processes were killed, when go-plugin has read their stderr to EOF.
func checkStderr(rec *recorder, procs []*pluginProcess) {
	const maxListed = 20
	lines := 0
	var problems []string
	for _, p := range procs {
		n, pr := p.stderr.result()
		lines += n
		problems = append(problems, pr...)
	}
	if len(problems) == 0 {
		rec.pass("stderr-lines", "", "%d line(s) from %d process(es), all valid", lines, len(procs))
		return
	}
	total, more := len(problems), ""
	if total > maxListed {
		more = fmt.Sprintf(" (and %d more)", total-maxListed)
		problems = problems[:maxListed]
	}
	rec.fail("stderr-lines", "", "%d problem(s) in %d line(s): %s%s", total, lines, strings.Join(problems, " | "), more)
}
