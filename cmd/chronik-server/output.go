package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// outputFormat is how the operator commands print: a table for people, or
// JSON for scripts.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
)

// parseOutputFormat checks --output.
func parseOutputFormat(s string) (outputFormat, error) {
	switch f := outputFormat(strings.ToLower(strings.TrimSpace(s))); f {
	case outputTable, outputJSON:
		return f, nil
	}
	return "", fmt.Errorf("--output %q: want table or json", s)
}

// addOutputFlag adds --output (-o) to cmd and returns where it is stored.
func addOutputFlag(cmd *cobra.Command) *string {
	var s string
	cmd.PersistentFlags().StringVarP(&s, "output", "o", string(outputTable), "table (for people) or json (for scripts)")
	return &s
}

// table is a text table with a header row, written aligned.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

// add appends a row; cells are formatted with fmt's %v.
func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = cellText(c)
	}
	t.rows = append(t.rows, row)
}

func cellText(c any) string {
	switch v := c.(type) {
	case string:
		if v == "" {
			return "-"
		}
		return v
	case []uint64:
		return joinIDs(v)
	case []int32:
		ids := make([]uint64, len(v))
		for i, id := range v {
			ids[i] = uint64(id)
		}
		return joinIDs(ids)
	case bool:
		if v {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprint(c)
}

// joinIDs writes node ids as 1,2,3 ("-" for none).
func joinIDs(ids []uint64) string {
	if len(ids) == 0 {
		return "-"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(parts, ",")
}

// write prints the table with columns separated by at least two spaces.
func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
