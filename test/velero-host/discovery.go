package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"velerogen/generated"
)

// Kind strings Velero accepts in a ListPlugins answer (pkg/plugin/framework/common/plugin_kinds.go);
// anything else makes discovery, and so the Velero server start, fail.
var validKinds = map[string]bool{
	"ObjectStore": true, "VolumeSnapshotter": true,
	"BackupItemAction": true, "BackupItemActionV2": true,
	"RestoreItemAction": true, "RestoreItemActionV2": true,
	"DeleteItemAction": true, "ItemBlockAction": true,
}

// listPlugins is what Velero's registry does right after the handshake.
func listPlugins(p *pluginProcess, o *options) ([]*generated.PluginIdentifier, error) {
	raw, err := p.dispense(kindPluginLister)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.callTimeout)
	defer cancel()
	resp, err := raw.(generated.PluginListerClient).ListPlugins(ctx, &generated.Empty{})
	if err != nil {
		return nil, fmt.Errorf("/generated.PluginLister/ListPlugins: %v", err)
	}
	return resp.GetPlugins(), nil
}

// checkListing records the discovery checks and returns the single command to relaunch
// (empty if there is none usable).
func checkListing(rec *recorder, ids []*generated.PluginIdentifier) string {
	infos := make([]PluginInfo, 0, len(ids))
	for _, id := range ids {
		infos = append(infos, PluginInfo{Name: id.GetName(), Kind: id.GetKind(), Command: id.GetCommand()})
	}
	rec.setPlugins(infos)
	if len(ids) == 0 {
		rec.fail("list-plugins", "", "ListPlugins returned no plugins")
		return ""
	}
	summary := make([]string, 0, len(ids))
	for _, id := range ids {
		summary = append(summary, id.GetKind()+" "+id.GetName())
	}
	rec.pass("list-plugins", "", "%d plugin(s): %s", len(ids), strings.Join(summary, ", "))

	var bad []string
	for _, id := range ids {
		if !validKinds[id.GetKind()] {
			bad = append(bad, fmt.Sprintf("%q (plugin %q)", id.GetKind(), id.GetName()))
		}
	}
	if len(bad) > 0 {
		rec.fail("plugin-kinds", "", "unknown kind(s) %s; Velero rejects the whole binary ('invalid plugin kind')", strings.Join(bad, ", "))
	} else {
		rec.pass("plugin-kinds", "", "all kinds valid")
	}

	bad = nil
	kindOf := map[string]string{}
	for _, id := range ids {
		name := id.GetName()
		if err := validatePluginName(name); err != nil {
			bad = append(bad, err.Error())
		} else if strings.HasPrefix(name, "velero.io/") {
			bad = append(bad, fmt.Sprintf("%q uses the velero.io prefix reserved for Velero's built-in plugins", name))
		}
		if prev, seen := kindOf[name]; seen {
			if prev == id.GetKind() {
				bad = append(bad, fmt.Sprintf("%q is listed twice under %s (Velero: duplicate plugin)", name, prev))
			} else {
				bad = append(bad, fmt.Sprintf("%q is listed under both %s and %s (Velero would run it twice per item)", name, prev, id.GetKind()))
			}
		}
		kindOf[name] = id.GetKind()
	}
	if len(bad) > 0 {
		rec.fail("plugin-names", "", "%s", strings.Join(bad, "; "))
	} else {
		rec.pass("plugin-names", "", "all names valid and unique")
	}

	// Velero later execs the returned command (one process per distinct command).
	bad = nil
	commands := map[string]bool{}
	for _, id := range ids {
		commands[id.GetCommand()] = true
		if err := checkCommand(id.GetCommand()); err != nil {
			bad = append(bad, fmt.Sprintf("plugin %q: %v", id.GetName(), err))
		}
	}
	if len(commands) > 1 {
		bad = append(bad, fmt.Sprintf("%d different commands returned; a single binary should return the path it was launched with (and this host relaunches only one)", len(commands)))
	}
	if len(bad) > 0 {
		rec.fail("plugin-command", "", "%s", strings.Join(bad, "; "))
	} else {
		rec.pass("plugin-command", "", "%s", ids[0].GetCommand())
	}
	return ids[0].GetCommand()
}

func checkCommand(command string) error {
	if command == "" {
		return fmt.Errorf("command is empty")
	}
	if !filepath.IsAbs(command) {
		return fmt.Errorf("command %q is not absolute", command)
	}
	st, err := os.Stat(command)
	if err != nil {
		return fmt.Errorf("command %q: %v", command, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("command %q is not an executable file (mode %v)", command, st.Mode())
	}
	return nil
}

// dns1123Subdomain is k8s.io/apimachinery's IsDNS1123Subdomain pattern.
var dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// validatePluginName mirrors Velero's ValidatePluginName (framework/common/server_mux.go);
// uniqueness is checked by the caller.
func validatePluginName(name string) error {
	parts := strings.Split(name, "/")
	if len(parts) != 2 {
		return fmt.Errorf("%q must have exactly two parts separated by a '/' (<DNS subdomain>/<non-empty name>)", name)
	}
	if parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("%q: both parts around '/' must be non-empty", name)
	}
	if len(parts[0]) > 253 || !dns1123Subdomain.MatchString(parts[0]) {
		return fmt.Errorf("%q: prefix %q is not a DNS-1123 subdomain (lowercase alphanumerics, '-', '.', at most 253 characters)", name, parts[0])
	}
	return nil
}
