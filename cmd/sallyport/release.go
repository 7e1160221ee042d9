package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/datadir"
)

func newCloudReleaseCmd() *cobra.Command {
	c := group("release", "Publish signed connector builds that updaters install")
	c.AddCommand(newReleasePublishCmd(), newReleaseListCmd(), newReleaseDeleteCmd(), newReleaseKeygenCmd())
	return c
}

func newReleasePublishCmd() *cobra.Command {
	var o datadir.PublishOptions
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Store a build and its manifest signed with the cloud's release key",
		Example: `  sallyport cloud release publish --data-dir /var/lib/sallyport/cloud --file ./sallyport --version 2.0.0 --major
  sallyport cloud release publish --data-dir D --file sallyport.exe --version 2.0.1 --key /secure/release.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := datadir.Publish(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if res.Warning != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+res.Warning)
			}
			m := res.Manifest
			kind := "minor: installed only by 'sallyport connector update --apply'"
			if m.Major {
				kind = "major: updaters install it on their own, one connector per group at a time"
			}
			fmt.Fprintf(out, "Published %s for %s/%s (%d bytes, sha256 %s), %s.\n", m.Version, m.OS, m.Arch, m.Size, m.SHA256, kind)
			fmt.Fprintf(out, "Signed with release key %s.\n", res.KeyID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "the cloud's data directory")
	f.StringVar(&o.File, "file", "", "the sallyport binary to publish")
	f.StringVar(&o.Version, "version", "", "the version the build embeds, MAJOR.MINOR.PATCH")
	f.StringVar(&o.OS, "os", "", "operating system of the build (default: read from the file)")
	f.StringVar(&o.Arch, "arch", "", "architecture of the build (default: read from the file)")
	f.BoolVar(&o.Major, "major", false, "a major release: updaters install it automatically")
	f.StringVar(&o.Notes, "notes", "", "a line of release notes")
	f.StringVar(&o.KeyFile, "key", "", "the release key when it is kept offline (default: the data directory's release.key)")
	for _, n := range []string{"data-dir", "file", "version"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newReleaseListCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the published releases, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := datadir.ListReleases(cmd.Context(), dataDir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				js, _ := json.MarshalIndent(ms, "", "  ")
				fmt.Fprintln(out, string(js))
				return nil
			}
			if len(ms) == 0 {
				fmt.Fprintln(out, "No release is published yet: publish one with 'sallyport cloud release publish'.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tPLATFORM\tTYPE\tSIZE\tPUBLISHED\tSHA256")
			for _, m := range ms {
				kind := "minor"
				if m.Major {
					kind = "major"
				}
				fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%d\t%s\t%s\n", m.Version, m.OS, m.Arch, kind, m.Size, m.PublishedAt.Format(time.RFC3339), m.SHA256[:16]+"…")
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the cloud's data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("data-dir")
	return cmd
}

func newReleaseDeleteCmd() *cobra.Command {
	var dataDir, v, goos, goarch string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Withdraw a release: updaters no longer see it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := datadir.DeleteRelease(cmd.Context(), dataDir, v, goos, goarch); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Withdrew release %s for %s/%s.\n", v, goos, goarch)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "the cloud's data directory")
	f.StringVar(&v, "version", "", "the release's version")
	f.StringVar(&goos, "os", "linux", "the release's operating system")
	f.StringVar(&goarch, "arch", "amd64", "the release's architecture")
	cmd.MarkFlagRequired("data-dir")
	cmd.MarkFlagRequired("version")
	return cmd
}

func newReleaseKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make a release key to keep offline (FILE, 0600) and its public half (FILE.pub)",
		Example: `  sallyport cloud release keygen --out /secure/release.key
  sallyport cloud init ... --release-public-key /secure/release.key.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := datadir.KeyGen(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote release key %s to %s and its public half to %s.pub.\n", id, out, out)
			fmt.Fprintf(cmd.OutOrStdout(), "Give the .pub to 'cloud init --release-public-key', keep %s offline, and sign with 'cloud release publish --key %s'.\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the private key to (never overwritten)")
	cmd.MarkFlagRequired("out")
	return cmd
}
