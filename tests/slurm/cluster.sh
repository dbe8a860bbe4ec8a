#!/usr/bin/env bash
# A real single-node SLURM cluster (Debian's slurm-wlm + munge + slurmdbd + MariaDB)
# for testing the workflow's SLURM profile on one machine. Needs root.
#
#   tests/slurm/cluster.sh install   apt-get the Debian packages (skipped if present)
#   tests/slurm/cluster.sh start     write configs under $ITX_SLURM_BASE, start the daemons,
#                                    record their PIDs; prints the SLURM_CONF to export
#   tests/slurm/cluster.sh status    recorded daemons and whether they are alive
#   tests/slurm/cluster.sh stop      stop exactly the PIDs recorded by start (nothing else)
#   tests/slurm/cluster.sh env       print "export SLURM_CONF=..."
#
# The daemons and client commands find the configuration through
# SLURM_CONF=$ITX_SLURM_BASE/etc/slurm.conf (slurmdbd.conf sits next to it). State,
# logs, spool and the MariaDB data live in $ITX_SLURM_BASE. The one thing written
# outside it is a symlink /etc/slurm/slurm.conf -> $ITX_SLURM_BASE/etc/slurm.conf
# (made by start only if that path is free, removed by stop): the jobstep plugin
# (snakemake-executor-plugin-slurm-jobstep 0.6.x) removes every SLURM_* variable,
# SLURM_CONF included, before it calls srun inside a job, so srun there only finds
# the configuration at Slurm's default path (else "srun: fatal: Could not
# establish a configuration source"). start refuses to run if /etc/slurm/slurm.conf
# is someone else's file.
# slurmdbd is always started: the SLURM executor plugin polls job states with sacct.
set -euo pipefail
BASE=${ITX_SLURM_BASE:-/tmp/itx-slurm}
CONF_DIR=$BASE/etc
export SLURM_CONF=$CONF_DIR/slurm.conf
PIDS=$BASE/pids
# Slurm's compiled-in default configuration path (Debian), see link_conf
DEFAULT_CONF=/etc/slurm/slurm.conf
LINKED=$BASE/linked-conf       # records that start made the $DEFAULT_CONF symlink
HOST=$(hostname -s)
NCPU=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 * 3 / 4 ))   # 75% of RAM
DB_PORT=${ITX_SLURM_DB_PORT:-3307}        # not 3306, so a system MariaDB is left alone
CLUSTER=itxlocal
PACKAGES="slurm-wlm slurm-client munge slurmdbd mariadb-server"

log() { echo "cluster.sh: $*" >&2; }

need_root() { [ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }; }

install_pkgs() {
  need_root
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null \
     && command -v munged >/dev/null && command -v mariadbd >/dev/null && command -v sacct >/dev/null; then
    log "packages already installed"; return 0
  fi
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
  log "installed $PACKAGES"
}

write_conf() {
  mkdir -p "$CONF_DIR" "$BASE"/{state,spool,log}
  cat > "$SLURM_CONF" <<CONF
# written by tests/slurm/cluster.sh
ClusterName=$CLUSTER
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups in containers/VMs like this one
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$BASE/slurmctld.pid
SlurmdPidFile=$BASE/slurmd.pid
SlurmdSpoolDir=$BASE/spool
StateSaveLocation=$BASE/state
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# keep the plugin's --comment (rule and wildcards) in sacct
AccountingStoreFlags=job_comment
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${NCPU} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  cat > "$CONF_DIR/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$BASE/log/slurmdbd.log
PidFile=$BASE/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurmpass
StorageLoc=slurm_acct_db
CONF
  chmod 600 "$CONF_DIR/slurmdbd.conf"
}

wait_for() {   # $1 = command, $2 = seconds
  local i
  for i in $(seq 1 $(( ${2:-60} * 2 ))); do
    if eval "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "timeout waiting for: $1"; return 1
}

record() { echo "$1 $2" >> "$PIDS"; }

# srun inside a job runs without SLURM_CONF (the jobstep plugin strips SLURM_*),
# so the configuration must also be at the default path: a symlink to ours.
link_conf() {
  if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$SLURM_CONF" ]; then
    : # ours, left over from a start without stop
  elif [ -e "$DEFAULT_CONF" ] || [ -L "$DEFAULT_CONF" ]; then
    log "$DEFAULT_CONF exists and is not ours (-> $SLURM_CONF); not touching it"
    log "jobs' srun would read that configuration: stop that cluster or move the file first"
    exit 1
  else
    mkdir -p "$(dirname "$DEFAULT_CONF")"
    ln -s "$SLURM_CONF" "$DEFAULT_CONF"
  fi
  echo "$DEFAULT_CONF" > "$LINKED"
}

unlink_conf() {   # only the symlink start made, and only if it still points at ours
  [ -f "$LINKED" ] || return 0
  if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$SLURM_CONF" ]; then
    rm -f "$DEFAULT_CONF"
    log "removed $DEFAULT_CONF (symlink to $SLURM_CONF)"
  fi
  rm -f "$LINKED"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

start() {
  need_root
  if [ -s "$PIDS" ]; then
    while read -r name pid; do
      if alive "$pid"; then log "already running ($name $pid); run stop first"; exit 1; fi
    done < "$PIDS"
  fi
  write_conf
  link_conf
  : > "$PIDS"
  # munge: the Debian package creates /etc/munge/munge.key; reuse a running munged
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    wait_for 'munge -n | unmunge' 30
    record munged "$(cat /run/munge/munged.pid)"
  else
    log "munged already running (not ours, left alone)"
  fi
  # MariaDB for slurmdbd, data under $BASE
  local db=$BASE/mysql new_db=""
  mkdir -p "$db/data" && chown -R mysql:mysql "$db"
  if [ ! -d "$db/data/mysql" ]; then
    mariadb-install-db --user=mysql --datadir="$db/data" --auth-root-authentication-method=socket >/dev/null
    new_db=1
  fi
  nohup mariadbd --user=mysql --datadir="$db/data" --socket="$db/mysqld.sock" \
    --bind-address=127.0.0.1 --port="$DB_PORT" --pid-file="$db/mariadbd.pid" \
    --log-error="$db/error.log" --innodb-buffer-pool-size=64M \
    --innodb-lock-wait-timeout=900 >/dev/null 2>&1 &
  record mariadbd $!
  wait_for "mariadb -S $db/mysqld.sock -e 'select 1'" 60
  if [ -n "$new_db" ]; then
    mariadb -S "$db/mysqld.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpass';
      CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpass';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
      FLUSH PRIVILEGES;"
  fi
  slurmdbd
  wait_for "[ -s $BASE/slurmdbd.pid ]" 30
  record slurmdbd "$(cat "$BASE/slurmdbd.pid")"
  wait_for 'sacctmgr -n list cluster' 60
  sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  slurmctld
  wait_for "[ -s $BASE/slurmctld.pid ]" 30
  record slurmctld "$(cat "$BASE/slurmctld.pid")"
  wait_for 'scontrol ping | grep -q UP' 60
  slurmd
  wait_for "[ -s $BASE/slurmd.pid ]" 30
  record slurmd "$(cat "$BASE/slurmd.pid")"
  wait_for "sinfo -h -o %T | grep -qx idle" 60
  # root's association (account "root") exists once the cluster is registered
  log "cluster up: $(sinfo -h -o '%P %D %c CPUs %m MB %T' | head -1)"
  echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {   # reverse start order; only PIDs recorded by start
  [ -s "$PIDS" ] || { unlink_conf; log "nothing recorded in $PIDS"; rm -f "$PIDS"; return 0; }
  tac "$PIDS" | while read -r name pid; do
    if alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do alive "$pid" || break; sleep 0.25; done
      if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
      log "stopped $name $pid"
    else
      log "$name $pid was not running"
    fi
  done
  rm -f "$PIDS"
  unlink_conf
}

status() {
  [ -s "$PIDS" ] || { echo "not running (no $PIDS)"; return 1; }
  local rc=0
  while read -r name pid; do
    if alive "$pid"; then echo "$name $pid running"; else echo "$name $pid DEAD"; rc=1; fi
  done < "$PIDS"
  return $rc
}

case "${1:-}" in
  install) install_pkgs ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  *) echo "usage: $0 install|start|status|stop|env" >&2; exit 2 ;;
esac
