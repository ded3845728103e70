package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward/client"
)

func keyCommands() []*command {
	idOnly := func(verb, summary string, call func(c *client.Client, r *run, id string) (*client.KeyMetadata, error), done string) *command {
		return &command{noun: "key", verb: verb, args: "ID", summary: summary, minArgs: 1, maxArgs: 1,
			run: func(r *run) error {
				c, id, err := r.keyClient(verb)
				if err != nil {
					return err
				}
				m, err := call(c, r, id)
				if err != nil {
					return err
				}
				if r.json {
					return r.printJSON(m)
				}
				r.printf("Key %s %s (state: %s).\n", sanitize(m.KeyID), done, m.KeyState)
				return nil
			}}
	}
	return []*command{
		{noun: "key", verb: "create", args: "[ID]", summary: "create a master key",
			help: "Create a master key. Without ID the server uses the \"name\" tag, else a new UUID.\nAn id is 1-128 characters of A-Z a-z 0-9 . _ -",
			flags: []flagDef{
				strFlag("description", "TEXT", "what the key is for"),
				listOf("tag", "KEY=VALUE", "a tag (repeatable)"),
			}, maxArgs: 1, run: runKeyCreate},
		{noun: "key", verb: "list", aliases: []string{"ls"}, summary: "list the keys, sorted by id",
			flags: []flagDef{
				strFlag("state", "STATE", "only keys in this state: Enabled, Disabled or PendingDeletion"),
				strFlag("limit", "N", "at most N keys (default 100; with --all: the page size)"),
				strFlag("marker", "ID", "continue a listing after this id (the next marker printed before)"),
				boolFlagDef("all", "follow the pages to list every key"),
			}, maxArgs: 0, run: runKeyList},
		{noun: "key", verb: "describe", args: "ID", summary: "show a key's metadata", minArgs: 1, maxArgs: 1,
			run: func(r *run) error {
				c, id, err := r.keyClient("describe")
				if err != nil {
					return err
				}
				m, err := c.DescribeKey(r.ctx, id)
				if err != nil {
					return err
				}
				return r.printKey(m)
			}},
		{noun: "key", verb: "delete", args: "ID", summary: "schedule a key's deletion (cancel with cancel-deletion)",
			help: "Schedule the key's destruction after a waiting period of --days (7 to 30, default\n30). Until then the key is PendingDeletion and `keyward key cancel-deletion ID`\nbrings it back. Once destroyed, every blob under it is lost for good.\n--now --yes destroys it immediately, if the server runs with --allow-immediate-deletion.",
			flags: []flagDef{
				strFlag("days", "N", "waiting period in days, 7 to 30 (default 30)"),
				boolFlagDef("now", "destroy the key immediately (needs --yes, and a server started with --allow-immediate-deletion)"),
				boolFlagDef("yes", "confirm --now"),
			}, minArgs: 1, maxArgs: 1, run: runKeyDelete},
		idOnly("cancel-deletion", "cancel a scheduled deletion: the key is Enabled again",
			func(c *client.Client, r *run, id string) (*client.KeyMetadata, error) {
				return c.CancelKeyDeletion(r.ctx, id)
			},
			"is no longer scheduled for deletion"),
		idOnly("enable", "enable a key",
			func(c *client.Client, r *run, id string) (*client.KeyMetadata, error) { return c.EnableKey(r.ctx, id) }, "enabled"),
		idOnly("disable", "disable a key: it can no longer encrypt or decrypt until enabled",
			func(c *client.Client, r *run, id string) (*client.KeyMetadata, error) { return c.DisableKey(r.ctx, id) }, "disabled"),
		{noun: "key", verb: "rotate", args: "ID", summary: "create a new key version (older blobs still decrypt)", minArgs: 1, maxArgs: 1,
			run: func(r *run) error {
				c, id, err := r.keyClient("rotate")
				if err != nil {
					return err
				}
				m, err := c.RotateKey(r.ctx, id)
				if err != nil {
					return err
				}
				if r.json {
					return r.printJSON(m)
				}
				r.printf("Key %s rotated: new data keys use version %d.\n", sanitize(m.KeyID), m.KeyVersion)
				return nil
			}},
		{noun: "key", verb: "rotation", args: "ID", summary: "turn automatic rotation on or off",
			flags: []flagDef{
				boolFlagDef("enable", "rotate automatically"),
				strFlag("period-days", "N", "rotate every N days, 90 to 2560 (default: the server's)"),
				boolFlagDef("disable", "stop rotating automatically"),
			}, minArgs: 1, maxArgs: 1, run: runKeyRotation},
		{noun: "key", verb: "update-description", args: "ID TEXT", summary: "replace a key's description", minArgs: 2, maxArgs: 2,
			run: func(r *run) error {
				c, id, err := r.keyClient("update the description of")
				if err != nil {
					return err
				}
				m, err := c.UpdateKeyDescription(r.ctx, id, r.p.args[1])
				if err != nil {
					return err
				}
				return r.printKey(m)
			}},
		{noun: "key", verb: "tag", args: "ID KEY=VALUE...", summary: "add or replace tags", minArgs: 2, maxArgs: -1,
			run: func(r *run) error {
				tags, err := keyValues("a tag", r.p.args[1:])
				if err != nil {
					return err
				}
				c, id, err := r.keyClient("tag")
				if err != nil {
					return err
				}
				m, err := c.TagKey(r.ctx, id, tags)
				if err != nil {
					return err
				}
				return r.printKey(m)
			}},
		{noun: "key", verb: "untag", args: "ID KEY...", summary: "remove tags", minArgs: 2, maxArgs: -1,
			run: func(r *run) error {
				c, id, err := r.keyClient("untag")
				if err != nil {
					return err
				}
				m, err := c.UntagKey(r.ctx, id, r.p.args[1:]...)
				if err != nil {
					return err
				}
				return r.printKey(m)
			}},
	}
}

// keyClient returns the client and the key id (the first argument), and
// names the operation.
func (r *run) keyClient(verb string) (*client.Client, string, error) {
	id := r.p.args[0]
	if id == "" {
		return nil, "", usagef("the key id is empty")
	}
	r.keyID = id
	r.setWhat("%s key %q", verb, id)
	c, err := r.client()
	return c, id, err
}

func runKeyCreate(r *run) error {
	tags, err := keyValues("--tag", r.list("tag"))
	if err != nil {
		return err
	}
	req := client.CreateKeyRequest{Description: r.str("description"), Tags: tags}
	if len(r.p.args) == 1 {
		req.KeyID = r.p.args[0]
		r.keyID = req.KeyID
		r.setWhat("create key %q", req.KeyID)
	} else {
		r.setWhat("create a key")
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	m, err := c.CreateKey(r.ctx, req)
	if err != nil {
		return err
	}
	return r.printKey(m)
}

func runKeyList(r *run) error {
	limit, _, err := r.intFlag("limit")
	if err != nil {
		return err
	}
	if limit < 0 {
		return usagef("--limit must be positive")
	}
	req := client.ListKeysRequest{Limit: limit, Marker: r.str("marker")}
	if s := r.str("state"); s != "" {
		st, ok := keyStateNamed(s)
		if !ok {
			return usagef("--state takes Enabled, Disabled or PendingDeletion, not %q", s)
		}
		req.State = st
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	r.setWhat("list keys")
	var res client.ListKeysResponse
	if r.boolean("all") {
		res.Keys = []client.KeyListEntry{}
		for k, err := range c.ListAllKeys(r.ctx, req) {
			var ue *client.UnreadableKeysError
			switch {
			case errors.As(err, &ue):
				res.UnreadableKeyIDs = ue.KeyIDs
			case err != nil:
				return err
			default:
				res.Keys = append(res.Keys, k)
			}
		}
	} else {
		page, err := c.ListKeys(r.ctx, req)
		if err != nil {
			return err
		}
		res = *page
	}
	if res.Keys == nil {
		res.Keys = []client.KeyListEntry{}
	}
	unreadable := func() error {
		if len(res.UnreadableKeyIDs) == 0 {
			return nil
		}
		return &cliError{code: ExitError, name: "UnreadableKeys",
			msg:  fmt.Sprintf("the server could not read %d key record(s): %s", len(res.UnreadableKeyIDs), strings.Join(res.UnreadableKeyIDs, ", ")),
			hint: "the server's log says why; the other keys are listed"}
	}
	if r.json {
		if err := r.printJSON(res); err != nil {
			return err
		}
		return unreadable()
	}
	rows := make([][]string, 0, len(res.Keys))
	for _, k := range res.Keys {
		rows = append(rows, []string{k.KeyID, string(k.KeyState), fmtTime(k.CreationDate), orDash(k.Description)})
	}
	writeTable(r.stdout, []string{"KEY ID", "STATE", "CREATED", "DESCRIPTION"}, rows)
	if len(res.Keys) == 0 {
		fmt.Fprintln(r.stderr, "no keys; create one with `keyward key create`")
	}
	if res.Truncated && res.NextMarker != "" {
		fmt.Fprintf(r.stderr, "more keys: run again with --marker %s, or with --all\n", sanitize(res.NextMarker))
	}
	return unreadable()
}

func keyStateNamed(s string) (client.KeyState, bool) {
	for _, st := range []client.KeyState{client.KeyEnabled, client.KeyDisabled, client.KeyPendingDeletion} {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return "", false
}

func runKeyDelete(r *run) error {
	days, hasDays, err := r.intFlag("days")
	if err != nil {
		return err
	}
	if hasDays && (days < 7 || days > 30) {
		return usagef("--days takes 7 to 30, not %d", days)
	}
	if r.boolean("now") {
		if hasDays {
			return usagef("--now and --days exclude each other")
		}
		if !r.boolean("yes") {
			return usagef("--now destroys the key and every blob under it for good: add --yes to confirm")
		}
		c, id, err := r.keyClient("destroy")
		if err != nil {
			return err
		}
		if err := c.DestroyKeyNow(r.ctx, id); err != nil {
			return err
		}
		if r.json {
			return r.printJSON(map[string]any{"key_id": id, "destroyed": true})
		}
		r.printf("Key %s destroyed.\n", sanitize(id))
		return nil
	}
	c, id, err := r.keyClient("schedule the deletion of")
	if err != nil {
		return err
	}
	m, err := c.ScheduleKeyDeletion(r.ctx, id, days)
	if err != nil {
		return err
	}
	if r.json {
		return r.printJSON(m)
	}
	when := "-"
	if m.DeletionDate != nil {
		when = fmtTime(*m.DeletionDate)
	}
	r.printf("Key %s is scheduled for deletion on %s (state: %s).\n", sanitize(m.KeyID), when, m.KeyState)
	r.printf("Cancel with `keyward key cancel-deletion %s` before then.\n", sanitize(m.KeyID))
	return nil
}

func runKeyRotation(r *run) error {
	enable, disable := r.boolean("enable"), r.boolean("disable")
	if enable == disable {
		return usagef("give --enable [--period-days N] or --disable")
	}
	period, hasPeriod, err := r.intFlag("period-days")
	if err != nil {
		return err
	}
	if hasPeriod && disable {
		return usagef("--period-days goes with --enable")
	}
	if hasPeriod && (period < 90 || period > 2560) {
		return usagef("--period-days takes 90 to 2560, not %d", period)
	}
	c, id, err := r.keyClient("set the rotation of")
	if err != nil {
		return err
	}
	m, err := c.SetKeyRotation(r.ctx, id, enable, period)
	if err != nil {
		return err
	}
	if r.json {
		return r.printJSON(m)
	}
	if !m.RotationEnabled {
		r.printf("Automatic rotation of key %s is off.\n", sanitize(m.KeyID))
		return nil
	}
	every := ""
	if m.RotationPeriodDays > 0 {
		every = " every " + strconv.Itoa(m.RotationPeriodDays) + " days"
	}
	r.printf("Key %s rotates automatically%s.\n", sanitize(m.KeyID), every)
	return nil
}
