package cli

import (
	"fmt"
	"strings"

	"github.com/keyward/keyward/client"
)

// keyAliasCommands are `keyward key-alias ...`: aliases of master keys
// ("alias/<name>"), as in AWS KMS. (`keyward alias` is the CLI's own saved
// endpoints and credentials.)
func keyAliasCommands() []*command {
	return []*command{
		{noun: "key-alias", verb: "list", aliases: []string{"ls"}, summary: "list key aliases, sorted by name",
			flags: []flagDef{
				strFlag("key", "ID", "only the aliases of this key"),
				strFlag("limit", "N", "at most N aliases (default 100)"),
				strFlag("marker", "NAME", "continue a listing after this alias (the next marker printed before)"),
			}, maxArgs: 0, run: runKeyAliasList},
		{noun: "key-alias", verb: "create", args: "alias/NAME KEY-ID", summary: "create an alias for a key",
			help:    "An alias is \"alias/\" and 1-249 of A-Z a-z 0-9 / _ -; \"alias/aws/\" is reserved.\nWherever a key id is taken for a key in use (describe, datakey, encrypt), the alias works too.",
			minArgs: 2, maxArgs: 2, run: func(r *run) error {
				return r.aliasChange("create alias %q", func(c *client.Client, name string) (*client.Alias, error) {
					return c.CreateAlias(r.ctx, name, r.p.args[1])
				})
			}},
		{noun: "key-alias", verb: "update", args: "alias/NAME KEY-ID", summary: "point an alias at another key",
			minArgs: 2, maxArgs: 2, run: func(r *run) error {
				return r.aliasChange("update alias %q", func(c *client.Client, name string) (*client.Alias, error) {
					return c.UpdateAlias(r.ctx, name, r.p.args[1])
				})
			}},
		{noun: "key-alias", verb: "delete", aliases: []string{"rm"}, args: "alias/NAME", summary: "delete an alias (its key stays)",
			minArgs: 1, maxArgs: 1, run: func(r *run) error {
				return r.aliasChange("delete alias %q", func(c *client.Client, name string) (*client.Alias, error) {
					return c.DeleteAlias(r.ctx, name)
				})
			}},
	}
}

// aliasChange runs one alias change and prints the alias as it now is
// (as it was, for a deletion).
func (r *run) aliasChange(what string, call func(c *client.Client, name string) (*client.Alias, error)) error {
	name := r.p.args[0]
	if !strings.HasPrefix(name, "alias/") {
		return usagef("an alias name starts with alias/ (got %q)", name)
	}
	r.setWhat(what, name)
	c, err := r.client()
	if err != nil {
		return err
	}
	a, err := call(c, name)
	if err != nil {
		return err
	}
	if r.json {
		return r.printJSON(a)
	}
	writeTable(r.stdout, []string{"ALIAS", "KEY ID", "CREATED", "UPDATED"},
		[][]string{{sanitize(a.AliasName), sanitize(a.TargetKeyID), fmtTime(a.CreationDate), fmtTime(a.LastUpdatedDate)}})
	return nil
}

func runKeyAliasList(r *run) error {
	limit, _, err := r.intFlag("limit")
	if err != nil {
		return err
	}
	if limit < 0 {
		return usagef("--limit must be positive")
	}
	req := client.ListAliasesRequest{KeyID: r.str("key"), Limit: limit, Marker: r.str("marker")}
	r.setWhat("list aliases")
	c, err := r.client()
	if err != nil {
		return err
	}
	page, err := c.ListAliases(r.ctx, req)
	if err != nil {
		return err
	}
	if page.Aliases == nil {
		page.Aliases = []client.Alias{}
	}
	if r.json {
		return r.printJSON(page)
	}
	rows := make([][]string, 0, len(page.Aliases))
	for _, a := range page.Aliases {
		rows = append(rows, []string{sanitize(a.AliasName), sanitize(a.TargetKeyID), fmtTime(a.CreationDate), fmtTime(a.LastUpdatedDate)})
	}
	writeTable(r.stdout, []string{"ALIAS", "KEY ID", "CREATED", "UPDATED"}, rows)
	if len(page.Aliases) == 0 {
		fmt.Fprintln(r.stderr, "no aliases; create one with `keyward key-alias create alias/NAME KEY-ID`")
	}
	if page.Truncated && page.NextMarker != "" {
		fmt.Fprintf(r.stderr, "more aliases: run again with --marker %s\n", sanitize(page.NextMarker))
	}
	return nil
}
