package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/internal/accessclient"
)

// newAccessCmd is `sallyport access`: a program's sign-in to an
// application with pre-authentication (accessclient).
func newAccessCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Sign in to an application from a terminal or a script, and use its token (curl)",
		Long: `Applications with pre-authentication answer programs that are not browsers with
401. 'sallyport access login APP-URL' signs you in with the OAuth device flow:
it prints a URL and a code, you approve in any browser, and the application's
token is kept in your configuration directory. 'access token' prints it,
'access curl' runs curl with it. See docs/identity.md.

'sallyport access login https://CLOUDNAME/ --user NAME@DOMAIN' signs you in to
the network applications of your organisation (private access): then
'access tcp APP' listens locally for an application ('access udp APP' for a
udp one), 'access stdio HOST
PORT' serves OpenSSH's ProxyCommand, 'access socks' is a local SOCKS5 proxy.
See docs/private-access.md.`,
	}
	cmd.AddCommand(newAccessLoginCmd(), newAccessTokenCmd(), newAccessCurlCmd(), newAccessLogoutCmd(), newAccessTCPCmd(), newAccessUDPCmd(), newAccessStdioCmd(), newAccessSOCKSCmd())
	return cmd
}

func newAccessLoginCmd() *cobra.Command {
	var caFile, user string
	cmd := &cobra.Command{
		Use:   "login APP-URL | CLOUD-URL --user NAME@DOMAIN",
		Short: "Sign in to an application, or with --user to the network applications at a cloud: approve the printed code in a browser",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return accessclient.Login(cmd.Context(), accessclient.Options{AppURL: args[0], CAFile: caFile, User: user, Out: cmd.OutOrStdout()})
		},
	}
	cmd.Flags().StringVar(&caFile, "ca-file", "", "a PEM file of CA certificates to trust besides the system's (the cloud's cloud-ca.pem when its certificates are its own); remembered for the other access commands")
	cmd.Flags().StringVar(&user, "user", "", "your user name: signs in to every network application of its organisation at the cloud's address CLOUD-URL (private access)")
	return cmd
}

func newAccessTCPCmd() *cobra.Command {
	var cloud, listen, dest string
	cmd := &cobra.Command{
		Use:   "tcp APP",
		Short: "Listen locally; each connection becomes a stream to the network application APP through its connector",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return accessclient.TCP(cmd.Context(), accessclient.TCPOptions{Options: accessclient.Options{AppURL: cloud, Out: cmd.OutOrStdout()},
				App: args[0], Dest: dest, Listen: listen})
		},
	}
	cmd.Flags().StringVar(&cloud, "cloud", "", "the cloud's address (https://CLOUDNAME/); by default the one network sign-in on this machine")
	cmd.Flags().StringVar(&listen, "listen", "", "the local address to listen on, 127.0.0.1:PORT (default: 127.0.0.1 and the application's port)")
	cmd.Flags().StringVar(&dest, "dest", "", "the destination HOST:PORT within the application's internal addresses (default: its one internal address)")
	return cmd
}

func newAccessUDPCmd() *cobra.Command {
	var cloud, listen, dest string
	var idle time.Duration
	cmd := &cobra.Command{
		Use:   "udp APP",
		Short: "Listen on a local UDP port; each client address becomes a flow to the udp network application APP through its connector",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return accessclient.UDP(cmd.Context(), accessclient.UDPOptions{Options: accessclient.Options{AppURL: cloud, Out: cmd.OutOrStdout()},
				App: args[0], Dest: dest, Listen: listen, Idle: idle})
		},
	}
	cmd.Flags().StringVar(&cloud, "cloud", "", "the cloud's address (https://CLOUDNAME/); by default the one network sign-in on this machine")
	cmd.Flags().StringVar(&listen, "listen", "", "the local UDP address to listen on, 127.0.0.1:PORT (default: 127.0.0.1 and the application's port)")
	cmd.Flags().StringVar(&dest, "dest", "", "the destination HOST:PORT within the application's internal addresses (default: its one internal address)")
	cmd.Flags().DurationVar(&idle, "idle", accessclient.UDPIdle, "end a flow after this long without a datagram either way")
	return cmd
}

func newAccessStdioCmd() *cobra.Command {
	var cloud string
	cmd := &cobra.Command{
		Use:   "stdio HOST PORT",
		Short: "Connect standard input and output to HOST:PORT through a connector (OpenSSH: ProxyCommand sallyport access stdio %h %p)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return accessclient.Stdio(cmd.Context(), accessclient.Options{AppURL: cloud}, args[0], args[1], cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&cloud, "cloud", "", "the cloud's address (https://CLOUDNAME/); by default the one network sign-in on this machine")
	return cmd
}

func newAccessTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "token APP-URL",
		Short: "Print a valid access token for the application (refreshed when it expires within a minute)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := accessclient.Token(cmd.Context(), accessclient.Options{AppURL: args[0]})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
}

func newAccessCurlCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "curl APP-URL [CURL-ARGS...]",
		Short: "Run curl on the URL with the application's access token; exits with curl's code",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := accessclient.Curl(cmd.Context(), accessclient.CurlOptions{Options: accessclient.Options{AppURL: args[0]}, Args: args[1:],
				Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			if code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
	// Everything after the URL is curl's, flags included.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newAccessLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout APP-URL",
		Short: "End the sign-in at the cloud and remove the application's stored tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := accessclient.Logout(cmd.Context(), accessclient.Options{AppURL: args[0]})
			if err != nil {
				return err
			}
			switch {
			case res.Removed && res.Ended:
				fmt.Fprintf(cmd.OutOrStdout(), "Signed out of %s: the cloud ended the sign-in, and its tokens were removed from this machine.\n", args[0])
			case res.Removed:
				fmt.Fprintf(cmd.OutOrStdout(), "Signed out of %s: its tokens were removed from this machine, but the cloud could not be told (%s); the sign-in ends on its own within 30 days, or when you sign out in a browser.\n", args[0], strings.TrimSuffix(res.NotEnded.Error(), "."))
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "You were not signed in to %s on this machine: nothing to remove.\n", args[0])
			}
			return nil
		},
	}
}

func newAccessSOCKSCmd() *cobra.Command {
	var cloud, listen string
	cmd := &cobra.Command{
		Use:   "socks",
		Short: "A local SOCKS5 proxy (CONNECT, UDP ASSOCIATE) to every network application you are assigned to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return accessclient.SOCKS(cmd.Context(), accessclient.SOCKSOptions{Options: accessclient.Options{AppURL: cloud, Out: cmd.OutOrStdout()}, Listen: listen})
		},
	}
	cmd.Flags().StringVar(&cloud, "cloud", "", "the cloud's address (https://CLOUDNAME/); by default the one network sign-in on this machine")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:1080", "the local address of the SOCKS5 proxy")
	return cmd
}
