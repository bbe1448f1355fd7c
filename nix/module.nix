# NixOS module for the ccci daemon: services.ccci (SPEC sections 5, 10 and 11).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkOption types;

  cfg = config.services.ccci;
  settingsFormat = pkgs.formats.yaml { };
  configFile = settingsFormat.generate "ccci.yml" cfg.settings;

  # The daemon reads its config from this stable path, not from the store
  # path: a SIGHUP after a switch must re-read the new file.
  configPath = "/etc/ccci/ccci.yml";

  # Seconds in a ccci duration "<int><unit>" (unit ms, s, m, h or d), rounded up.
  toSeconds =
    key: default:
    let
      d = cfg.settings.${key} or default;
      m = builtins.match "([0-9]+)(ms|s|m|h|d)" d;
      n = lib.toIntBase10 (builtins.head m);
      unit = builtins.elemAt m 1;
      scale = {
        s = 1;
        m = 60;
        h = 3600;
        d = 86400;
      };
    in
    if !(builtins.isString d) || m == null then
      throw "services.ccci.settings.${key}: ${builtins.toJSON d} is not a duration such as 30s, 10m, 2h or 1d"
    else if unit == "ms" then
      (n + 999) / 1000
    else
      n * scale.${unit};

  # systemd must not SIGKILL the daemon while it is still waiting for runs,
  # killing harnesses or tearing deployments down (SPEC section 5).
  stopTimeout =
    toSeconds "shutdown_grace" "0s" + toSeconds "kill_grace" "30s" + toSeconds "teardown_grace" "10m" + 60;

  defaultDirs = [
    "/var/lib/ccci"
    "/run/ccci"
  ];
  # Directories the daemon writes to: the state dir and the socket's directory.
  writableDirs = [
    cfg.settings.state_dir
    (dirOf cfg.settings.socket)
  ];
in
{
  options.services.ccci = {
    enable = lib.mkEnableOption "ccci, the CI service for Co-op Cloud recipes";

    package = lib.mkPackageOption pkgs "ccci" { };

    extraPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      description = "Packages added to the service's PATH for the harness: abra, and pkgs.chromium for SCREENSHOT (harness.chromium).";
    };

    user = mkOption {
      type = types.str;
      default = "ccci";
      description = "User the daemon runs as; created when left at the default.";
    };

    group = mkOption {
      type = types.str;
      default = "ccci";
      description = ''
        Group of the daemon. Its members can use the control socket, and so
        can run any recipe with Docker access on this host: membership is
        root-equivalent.
      '';
    };

    settings = mkOption {
      description = ''
        ccci configuration, written as YAML to ${configPath}. The keys are
        those of docs/config.md (SPEC section 10), nested as YAML maps.
      '';
      default = { };
      example = lib.literalExpression ''
        {
          capacity = 4;
          retention.max_age = "14d";
          forge = {
            url = "https://git.example.org";
            token_file = "/run/secrets/ccci-forge-token";
            repos = [ "coop-cloud/traefik" "coop-cloud/keycloak" ];
          };
          http.listen = "127.0.0.1:8080";
        }
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options.state_dir = mkOption {
          type = types.str;
          default = "/var/lib/ccci";
          description = "Runs, logs, ledger and locks.";
        };
        options.socket = mkOption {
          type = types.str;
          default = "/run/ccci/ccci.sock";
          description = "The control socket (0660, in a 0750 directory).";
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    warnings =
      lib.optional (!(cfg.settings ? secrets_dir)) ''
        services.ccci.settings.secrets_dir is unset: ccci masks the values of
        the files in /run/secrets.
      ''
      ++ lib.optional (!config.virtualisation.docker.enable) ''
        services.ccci needs a Docker daemon (a swarm manager) but
        virtualisation.docker.enable is false.
      '';

    # Membership of docker, like that of the socket's group, is root-equivalent:
    # an authorised !testme runs the PR's code with Docker access (SPEC 11).
    users.users = lib.mkIf (cfg.user == "ccci") {
      ccci = {
        isSystemUser = true;
        group = cfg.group;
        extraGroups = [ "docker" ];
        home = "/var/lib/ccci";
      };
    };
    users.groups = lib.mkIf (cfg.group == "ccci") { ccci = { }; };

    environment.etc."ccci/ccci.yml".source = configFile;
    # Operators' `ccci ps`, `ccci drain` and so on find the daemon.
    environment.systemPackages = [ cfg.package ];
    environment.variables.CCCI_SOCKET = cfg.settings.socket;

    systemd.tmpfiles.rules = map (d: "d '${d}' 0750 ${cfg.user} ${cfg.group} - -") (
      lib.subtractLists defaultDirs writableDirs
    );

    systemd.services.ccci = {
      description = "ccci, CI for Co-op Cloud recipes";
      wantedBy = [ "multi-user.target" ];
      # After docker, so at shutdown ccci stops and tears runs down first.
      after = [
        "network-online.target"
        "docker.service"
      ];
      wants = [ "network-online.target" ];
      path = [
        cfg.package
        pkgs.docker-client
        pkgs.git
      ] ++ cfg.extraPackages;

      # A restart cancels the running runs, so a switch never restarts ccci:
      # after a package update run `ccci drain`, then restart it by hand. A
      # change of the configuration alone reloads it (SIGHUP) instead.
      restartIfChanged = false;
      reloadTriggers = [ configFile ];

      serviceConfig = {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${cfg.package}/bin/ccci serve -c ${configPath}";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        User = cfg.user;
        Group = cfg.group;
        Restart = "on-failure";
        RestartSec = "5s";
        # SIGTERM to the daemon alone, which stops its runs; the rest of the
        # cgroup is killed only when the timeout is spent.
        KillMode = "mixed";
        TimeoutStopSec = stopTimeout;

        StateDirectory = "ccci";
        StateDirectoryMode = "0750";
        RuntimeDirectory = "ccci";
        RuntimeDirectoryMode = "0750";
        UMask = "0027";

        # Hardening that still lets the docker client reach /run/docker.sock:
        # no PrivateUsers, no PrivateNetwork. Homes stay readable because
        # `ccci submit` has the daemon copy the submitter's directory; a
        # directory under /tmp is not visible to it (PrivateTmp).
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ReadWritePaths = writableDirs;
        ProtectHome = "read-only";
        PrivateTmp = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        LockPersonality = true;
        RestrictRealtime = true;
        SystemCallArchitectures = "native";
      };
    };
  };
}
