// A vCenter simulator for clonewatch's tests, built from Debian's govmomi (no vcsim binary there):
//   GOPATH=/usr/share/gocode GO111MODULE=off go build -o vcsim-clonewatch .
// It serves the govmomi VPX model (one datacenter, hosts, VMs, datastores) over HTTPS on
// 127.0.0.1 and prints its SDK URL on stdout; it stops on SIGTERM or when stdin closes.
// -username/-password make it check logins (by default vcsim takes any); -cert/-key give it a
// certificate of ours (its built-in one has a key too weak for OpenSSL to verify).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	vms := flag.Int("vms", 2, "VMs per host")
	username := flag.String("username", "", "the only user that may log in")
	password := flag.String("password", "", "its password")
	certFile := flag.String("cert", "", "TLS certificate (PEM)")
	keyFile := flag.String("key", "", "TLS key (PEM)")
	retrieveDelay := flag.Int("retrieve-delay-ms", 0, "delay every property retrieval by this much (a slow vCenter)")
	flag.Parse()

	model := simulator.VPX()
	model.Machine = *vms
	model.DelayConfig.MethodDelay = map[string]int{
		"RetrieveProperties": *retrieveDelay, "RetrievePropertiesEx": *retrieveDelay}
	if err := model.Create(); err != nil {
		fmt.Fprintln(os.Stderr, "create:", err)
		os.Exit(1)
	}
	model.Service.TLS = new(tls.Config)
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cert:", err)
			os.Exit(1)
		}
		model.Service.TLS.Certificates = []tls.Certificate{cert}
	}
	model.Service.Listen = &url.URL{Host: *listen}
	if *username != "" {
		model.Service.Listen.User = url.UserPassword(*username, *password)
	}
	server := model.Service.NewServer()
	fmt.Println(server.URL.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { io.Copy(io.Discard, os.Stdin); stop <- syscall.SIGTERM }()
	<-stop
	server.Close()
	model.Remove()
}
