#!/usr/bin/env bash
# Builds an evaluation set of synthetic body-cam-like clips with KNOWN escalation
# event times (shouting, screams, loud impulses, struggle shake, running), plus
# calm clips for false-alarm rates. Sources, licences, ground truth: scripts/EVENTS.md.
#
#   scripts/make-event-clips.sh [OUTDIR]     (default: .cache/events at the repo root)
#
# Needs Debian packages espeak-ng, hedgewars-data and ffmpeg (missing ones are
# installed, as root or with sudo), plus the committed fixtures/ for the stills.
# Idempotent: skips when OUTDIR/index.json carries this script's VERSION and all
# clips exist; otherwise deletes the old clips and rebuilds. Deterministic: every
# random choice comes from a seeded LCG (per clip seed), never from $RANDOM.
set -euo pipefail
VERSION=1   # bump whenever the output changes

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/.cache/events}
HW=/usr/share/games/hedgewars/Data/Sounds
REF=-34     # calm speech RMS in dBFS before the per-clip microphone gain
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# ---------------------------------------------------------------- apt (as scripts/setup.sh)
ensure_apt() {
  local installed p missing=() sudo_cmd=()
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  for p in "$@"; do grep -qxF "$p install ok installed" <<<"$installed" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "make-event-clips: installing apt packages: ${missing[*]}"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------- stamp check
stamp_ok() {
  local f
  grep -q "^  \"version\": $VERSION,\$" "$out/index.json" 2>/dev/null || return 1
  for f in $(grep -o '"file": "[^"]*"' "$out/index.json" | cut -d'"' -f4); do
    [[ -s $out/$f ]] || return 1
  done
}
if stamp_ok; then echo "make-event-clips: $out is up to date (version $VERSION)"; exit 0; fi
command -v dpkg-query >/dev/null && ensure_apt espeak-ng hedgewars-data ffmpeg
mkdir -p "$out"
rm -f "$out"/index.json "$out"/event_*.mp4 "$out"/calm_*.mp4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP   # so that the EXIT trap runs
t_start=$SECONDS

# ---------------------------------------------------------------- helpers
# Seeded LCG: `seed N` hashes N into the state; `rnd LO HI` sets R to an integer
# in [LO, HI] from the state's high bits. Call both in the current shell (never
# inside $(...)), or the state is lost.
rng=1
seed() { local x=$(( ($1 + 0x9E3779B9) & 0x7fffffff )) i; for i in 1 2 3; do x=$(( ((x ^ (x >> 15)) * 0x2c1b3c6d) & 0x7fffffff )); done; rng=$x; }
rnd() { rng=$(( (rng * 1103515245 + 12345) % 2147483648 )); R=$(( $1 + ((rng >> 15) * ($2 - $1 + 1) >> 16) )); }
pick() { local -n _arr=$1; rnd 0 $(( ${#_arr[@]} - 1 )); P=${_arr[R]}; }
sec() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }        # ms -> "s.mmm" (ms >= 0)
phase() { rnd 0 6283; PH=$(sec "$R"); }                              # PH: random phase (radians)
join() { local x; J=""; for x; do J+="${J:+,$'\n'        }$x"; done; }  # J: JSON list items
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }                      # float arithmetic
amp() { awk "BEGIN { printf \"%.5f\", 10^(($1)/20) }"; }            # dBFS -> linear

# prep NAME SRC [FILTER]: decode to $tmp/NAME.wav (48 kHz mono float), trim leading
# and trailing parts below -50 dBFS, apply FILTER, record LEN (ms), RMS, PEAK (dBFS).
declare -A LEN RMS PEAK
prep() {
  local trim="silenceremove=start_periods=1:start_threshold=-50dB" st
  [[ -n ${LEN[$1]:-} ]] && return 0
  st=$(ffmpeg -nostdin -hide_banner -nostats -i "$2" -af "aresample=48000,aformat=sample_fmts=flt:channel_layouts=mono,$trim,areverse,$trim,areverse,${3:+$3,}astats=measure_perchannel=none:measure_overall=Peak_level+RMS_level+Number_of_samples" \
    -c:a pcm_f32le -y "$tmp/$1.wav" 2>&1 |
    awk -F': ' '/Peak level dB/{p=$2} /RMS level dB/{r=$2} /Number of samples/{n=$2} END{printf "%d %.2f %.2f", n/48, r, p}')
  read -r "LEN[$1]" "RMS[$1]" "PEAK[$1]" <<<"$st"
}

# ---------------------------------------------------------------- sources
# Stills (480x360, so a 320x240 crop window can move): fixtures, see fixtures/README.md.
still() { ff -ss "$2" -i "$repo/fixtures/$1" -frames:v 1 -vf "scale=480:360:force_original_aspect_ratio=increase,crop=480:360" "$tmp/still_$3.png"; }
still people_vtest_768x576.mp4 1 0; still people_vtest_768x576.mp4 3 1
still face_720p.mp4 3 2; still astronaut.png 0 3
STILL_NAMES=("vtest.avi frame (fixtures/people_vtest_768x576.mp4 @1s)" "vtest.avi frame (fixtures/people_vtest_768x576.mp4 @3s)"
  "fixtures/face_720p.mp4 @3s" "fixtures/astronaut.png")

# Calm speech pool: 20 sentences x 2 espeak-ng voices = 40 utterances.
SENTENCES=("Good afternoon. How are you doing today?" "Can I see some identification, please?"
  "Thanks. I will just be a moment." "We got a call about a noise complaint on this street."
  "Sure, no problem. It is in my wallet." "Is this your car parked out front?"
  "Yes, I live just around the corner." "Alright, everything looks fine here."
  "Do you know which way the bus station is?" "It is about two blocks down, on the left."
  "Have a good evening, and drive safe." "I was just walking the dog, that is all."
  "Okay. Did you see anything unusual tonight?" "No, it has been pretty quiet, honestly."
  "Let me write down your phone number." "The weather has been really nice this week."
  "Could you step over here to the sidewalk for me?" "Of course. Take your time."
  "We will follow up with you tomorrow morning." "Thank you, officer. Have a nice day.")
VOICES=("en-us+m3 150 45" "en-gb+f2 160 55" "en-gb-x-rp+m1 145 40" "en-us+f4 170 60" "en-gb-scotland+m7 155 50" "en-us-nyc+m2 165 45")
SPEECH=()
for i in "${!SENTENCES[@]}"; do
  for j in $(( i % 6 )) $(( (i + 3) % 6 )); do
    read -r v s p <<<"${VOICES[j]}"
    espeak-ng -v "$v" -s "$s" -p "$p" -w "$tmp/raw_sp_${i}_$j.wav" "${SENTENCES[i]}"
    # espeak-ng's peaks sit ~20 dB over its RMS (-20 dBFS); limit them to a
    # more mic-like ~14 dB crest so bangs stay well above speech peaks.
    prep "sp_${i}_$j" "$tmp/raw_sp_${i}_$j.wav" "alimiter=limit=0.45:level=0:attack=2:release=30:latency=1"
    SPEECH+=("sp_${i}_$j")
  done
done

# hedgewars-data sounds (prepared lazily by hw NAME).
SHOUT_VOICES=(British Classic Default HillBilly Mobster Pirate Surfer Russian)
SHOUT_LINES=(Leavemealone Cutitout Illgetyou Youllregretthat Watchit Comeonthen Traitor Coward Stupid)
GRUNTS=(Ooff1 Ooff2 Ooff3 Ow1 Ow2 Ow3 Ow4)
BANGS=(explosion shotgunfire gun mortar grenadeimpact firepunch_hit hammer baseballbat melonimpact)
hw() { P="hw_${1//\//_}"; prep "$P" "$HW/$1.ogg"; }

# ---------------------------------------------------------------- clip assembly state
# IN: extra ffmpeg inputs; CH: audio filter chains; MIX: their labels;
# XT/YT: terms added to the crop window position; BUSY: "start end" ms spans
# kept free of calm speech; EVJ/DSJ: JSON of events / distractors.
reset_clip() { IN=(); CH=(); MIX=""; XT=""; YT=""; BUSY=(); EVJ=(); DSJ=(); nsrc=0; nmix=0; }
add_file() { # NAME DELAY_MS GAIN_DB [FILTERS]
  IN+=(-i "$tmp/$1.wav"); local k=$(( ${#IN[@]} / 2 ))
  CH+=("[$k:a]volume=${3}dB${4:+,$4},adelay=$2:all=1[a$k]"); MIX+="[a$k]"; nmix=$(( nmix + 1 ))
}
add_src() { # SOURCE_AND_FILTERS DELAY_MS
  nsrc=$(( nsrc + 1 )); CH+=("$1,adelay=$2:all=1[s$nsrc]"); MIX+="[s$nsrc]"; nmix=$(( nmix + 1 ))
}
free_at() { # START END: 0 if no BUSY span overlaps [START-700, END+700]
  local b s e; for b in "${BUSY[@]}"; do read -r s e <<<"$b"; (( $2 + 700 < s || $1 > e + 700 )) || return 1; done
}
add_speech() { # calm utterances with pauses, skipping BUSY spans
  local t n; rnd 500 5000; t=$R
  while :; do
    pick SPEECH; n=$P
    (( t + ${LEN[$n]} > $1 - 500 )) && break
    if free_at "$t" $(( t + ${LEN[$n]} )); then
      rnd -2 2; add_file "$n" "$t" "$(calc "$REF - (${RMS[$n]}) + $R")"
      rnd 1500 7000; t=$(( t + ${LEN[$n]} + R ))
    else t=$(( t + 1000 )); fi
  done
}
json_ev() { # ARRAY KIND ONSET_MS END_MS DETAIL SOURCE
  local -n _j=$1; _j+=("{\"kind\": \"$2\", \"onset\": $(sec "$3"), \"end\": $(sec "$4"), \"detail\": \"$5\", \"source\": \"$6\"}")
}

# ---------------------------------------------------------------- events
# plan_KIND sets E_LEN (ms) and E_ARGS; emit_KIND ONSET_MS LEN ARGS... places it.
plan_shouting() { # 2-6 s of shouted lines by one hedgewars voice, +10..+18 dB
  local voice off=0 end=0 parts="" used=" "; pick SHOUT_VOICES; voice=$P
  while :; do
    pick SHOUT_LINES; [[ $used == *" $P "* ]] && continue
    used+="$P "; hw "voices/$voice/$P"
    (( off + ${LEN[$P]} > 6000 )) && break
    parts+=",$P@$off"; end=$(( off + ${LEN[$P]} ))
    if (( end >= 2000 )); then rnd 0 2; (( R == 0 )) && break; fi
    rnd 100 400; off=$(( end + R ))
  done
  rnd 10 18; E_LEN=$end; E_ARGS="$R ${parts#,}"
}
emit_shouting() { # ONSET LEN REL PARTS [DETAIL]
  local p n names=""
  for p in ${4//,/ }; do
    n=${p%@*}; add_file "$n" $(( $1 + ${p#*@} )) "$(calc "$REF + $3 - (${RMS[$n]})")"; names+="${names:+, }${n##*_}"
  done
  n=${n#hw_voices_}; json_ev EVJ shouting "$1" $(( $1 + $2 )) "${5:-voice_lines}" "hedgewars voice ${n%_*}: $names, +$3 dB RMS over calm speech"
}
plan_scream() { # synthetic harmonic sweep, or a hedgewars "Nooo"; +12..+20 dB
  local f0 f1; rnd 12 20; local rel=$R; rnd 0 1
  if (( R )); then pick SHOUT_VOICES; hw "voices/$P/Nooo"; E_LEN=${LEN[$P]}; E_ARGS="hw $rel $P@0"
  else rnd 1000 2000; E_LEN=$R; rnd 650 800; f0=$R; rnd 1200 1500; f1=$R; E_ARGS="synth $rel $f0 $f1"; fi
}
emit_scream() { # ONSET LEN hw REL PARTS | ONSET LEN synth REL F0 F1
  [[ $3 == hw ]] && { emit_shouting "$1" "$2" "$4" "$5" scream; return; }
  local L; L=$(sec "$2"); rnd 20 60; local v=$R; rnd 50 70
  local ex="st(0,2*PI*($5*t+($6-$5)*$L/PI*(1-cos(PI*t/$L)))-$v/($R/10)*cos(2*PI*($R/10)*t));$(amp "$REF + $4 + 2")*min(1,t/0.05)*min(1,($L-t)/0.2)*(sin(ld(0))+0.5*sin(2*ld(0))+0.3*sin(3*ld(0))+0.2*sin(4*ld(0)))"
  add_src "aevalsrc=exprs='$ex':s=48000:d=$L" "$1"
  json_ev EVJ shouting "$1" $(( $1 + $2 )) scream "synthetic scream, $5-$6-$5 Hz sweep, vibrato +-$v Hz at $(calc "$R / 10") Hz, +$4 dB RMS over calm speech"
}
plan_impulse() { # hedgewars bang/impact, or 1-3 synthetic gunshots; peak +24..+33 dB over speech RMS
  rnd 24 33; local rel=$R n; rnd 0 3
  if (( R )); then pick BANGS; hw "$P"; E_LEN=${LEN[$P]}; E_ARGS="hw $rel $P"
  else rnd 1 3; n=$R; rnd 150 450; E_LEN=$(( (n - 1) * R + 600 )); E_ARGS="synth $rel $n $R"; fi
}
emit_impulse() { # ONSET LEN hw REL NAME | ONSET LEN synth REL COUNT GAP
  if [[ $3 == hw ]]; then
    add_file "$5" "$1" "$(calc "$REF + $4 - (${PEAK[$5]})")"
    json_ev EVJ loud_impulse "$1" $(( $1 + $2 )) "${5#hw_}" "hedgewars ${5#hw_}.ogg, peak $(( REF + $4 )) dBFS before mic gain"; return
  fi
  local i a; a=$(amp "$REF + $4 - 2.3"); rnd 15 25
  for (( i = 0; i < $5; i++ )); do
    add_src "aevalsrc=exprs='$a*min(1,t/0.0005)*exp(-t*$R)*(2*random(0)-1)+0.5*$a*sin(2*PI*95*t)*exp(-t*20)':s=48000:d=0.6" $(( $1 + i * $6 ))
  done
  json_ev EVJ loud_impulse "$1" $(( $1 + $2 )) gunshot "$5 synthetic gunshot(s) $6 ms apart, peak about $(( REF + $4 )) dBFS before mic gain"
}
plan_struggle() { # 4-10 s of broadband crop-window shake, 12-35 px, optional grunts/rustle
  local a g n v parts="" ph=""; rnd 4000 10000; E_LEN=$R; rnd 12 35; a=$R; rnd 0 2; g=$R
  if (( g )); then
    rnd 1 3; for (( n = R; n > 0; n-- )); do
      pick SHOUT_VOICES; v=$P; pick GRUNTS; hw "voices/$v/$P"; rnd 0 $(( E_LEN - ${LEN[$P]} )); parts+=",$P@$R"
    done
  fi
  for n in 1 2 3 4 5 6; do phase; ph+=" $PH"; done
  E_ARGS="$a$ph ${parts#,}"
}
# shake_term AMP F1 F2 PH1 PH2 PH3 STEP_HZ A B: incommensurate sines + pseudo-random steps, on [A,B]
shake_term() {
  echo "+if(between(t,$8,$9),$1*(0.45*sin(2*PI*$2*t+$4)+0.35*sin(2*PI*$3*t+$5)+0.2*sin(2*PI*9.13*t+$6)+0.4*(2*mod(sin(floor(t*$7)*12.9898+$4)*43758.5453,1)-1)),0)"
}
emit_struggle() { # ONSET LEN A PHASES(6) [GRUNTS]
  local a b p rel="" L det=shake; a=$(sec "$1"); b=$(sec $(( $1 + $2 ))); L=$(sec "$2")
  XT+=$(shake_term "$3" 2.31 5.73 "$4" "$5" "$6" 6.1 "$a" "$b")
  YT+=$(shake_term $(( $3 * 7 / 10 )) 1.87 4.39 "$7" "$8" "$9" 4.7 "$a" "$b")
  if [[ -n ${10:-} ]]; then det=shake_grunts
    for p in ${10//,/ }; do
      rnd 0 8; add_file "${p%@*}" $(( $1 + ${p#*@} )) "$(calc "$REF + $R - (${RMS[${p%@*}]})")"; p=${p#hw_voices_}; rel+=", ${p/@/ at +}ms"
    done
    rnd 15 35; add_src "anoisesrc=c=pink:r=48000:a=$(amp "$REF + 12"):seed=$R:d=$L,highpass=f=300,tremolo=f=4.7:d=0.8" "$1"
    rel="; hedgewars grunts ${rel#, }; clothing rustle"
  fi
  json_ev EVJ struggle "$1" $(( $1 + $2 )) "$det" "crop jitter amplitude $3 px$rel"
}
plan_running() { # 8-15 s: 2.5-3.0 Hz bob 8-15 px, stride sway, drift, footsteps
  local f a b d; rnd 8000 15000; E_LEN=$R; rnd 250 300; f=$(calc "$R / 100"); rnd 8 15; a=$R
  rnd 5 12; b=$R; rnd -25 25; d=$R; rnd 0 1; E_ARGS="$f $a $b $d $R"
}
emit_running() { # ONSET LEN F BOB SWAY DRIFT BREATH
  local a b L br=""; a=$(sec "$1"); b=$(sec $(( $1 + $2 ))); L=$(sec "$2")
  XT+="+if(between(t,$a,$b),$5*sin(PI*$3*(t-$a))+$6*sin(PI*(t-$a)/$L),0)"
  YT+="+if(between(t,$a,$b),$4*sin(2*PI*$3*(t-$a)),0)"
  rnd 10 18; add_src "aevalsrc=exprs='st(0,mod(t,1/$3));$(amp "$REF + $R")*exp(-ld(0)*30)*(sin(2*PI*60*ld(0))+0.4*(2*random(1)-1)*exp(-ld(0)*50))':s=48000:d=$L" "$1"
  if (( $7 )); then
    rnd 1 99; br=" + breathing"
    add_src "anoisesrc=c=pink:r=48000:a=$(amp "$REF + 8"):seed=$R:d=$L,bandpass=f=900:width_type=o:w=2,tremolo=f=1.1:d=0.9" "$1"
  fi
  json_ev EVJ running "$1" $(( $1 + $2 )) run "bob $4 px at $3 Hz, sway $5 px, drift $6 px, footsteps$br"
}

# ---------------------------------------------------------------- calm distractors
emit_thud() { # door-close-level thud, peaks below speech peaks
  rnd 10 14; add_src "aevalsrc=exprs='$(amp "$REF + $R - 2.3")*(exp(-t*25)*(sin(2*PI*55*t)+0.5*sin(2*PI*110*t))+0.25*exp(-t*70)*(2*random(0)-1))':s=48000:d=0.5,lowpass=f=900" "$1"
  BUSY+=("$1 $(( $1 + 500 ))"); json_ev DSJ door_thud "$1" $(( $1 + 500 )) thud "peak about $(( REF + R )) dBFS before mic gain"
}
emit_close() { # calm speaker close to the mic: +5..+7 dB with proximity bass
  pick SPEECH; local n=$P; rnd 5 7
  add_file "$n" "$1" "$(calc "$REF - (${RMS[$n]}) + $R")" "bass=g=4"
  BUSY+=("$1 $(( $1 + ${LEN[$n]} ))"); json_ev DSJ close_speaker "$1" $(( $1 + ${LEN[$n]} )) calm_speech "espeak-ng $n at +$R dB"
}
emit_turn() { # slow camera turn of 25-45 px over 2.5-5 s, held, then turned back
  local p T H a b s; rnd 25 45; p=$R; rnd 0 1; (( R )) && p=$(( -p )); rnd 2500 5000; T=$R; rnd 5000 20000; H=$R
  a=$(sec "$1"); b=$(sec $(( $1 + T + H ))); s=$(sec "$T")
  XT+="+$p*(st(0,clip((t-$a)/$s,0,1));ld(0)*ld(0)*(3-2*ld(0)))-$p*(st(0,clip((t-$b)/$s,0,1));ld(0)*ld(0)*(3-2*ld(0)))"
  json_ev DSJ camera_turn "$1" $(( $1 + 2 * T + H )) turn "$p px over $s s, held $(sec "$H") s, turned back"
}

# ---------------------------------------------------------------- encode one clip
# encode NAME DUR_S CALM: picture (seeded sway/drift + XT/YT), background noise,
# calm speech, everything in CH; appends the clip's entry to CLIPS.
CLIPS=()
encode() {
  local name=$1 dur=$2 gain noise img flip="" x y bri amp1 f1 s1
  rnd -6 6; gain=$R; rnd -45 -35; noise=$(( R < REF + gain - 6 ? R : REF + gain - 6 ))
  rnd 0 3; img=$R; rnd 0 1; (( R )) && flip="hflip,"; rnd -4 4; bri=$(calc "$R / 100")
  rnd 2 6; amp1=$R; rnd 10 35; f1=$R; phase; x="80+$amp1*sin(2*PI*0.$f1*t+$PH)"     # slow sway
  rnd 5 20; amp1=$R; rnd 60 120; f1=$R; phase; x+="+$amp1*sin(2*PI*t/$f1+$PH)$XT"   # slow drift
  rnd 1 4; amp1=$R; rnd 15 45; f1=$R; phase; y="60+$amp1*sin(2*PI*0.$f1*t+$PH)$YT"
  add_speech $(( dur * 1000 ))
  rnd 1 9999; s1=$R; rnd 1 9999
  {
    echo "[0:v]${flip}eq=brightness=$bri,format=yuv444p,loop=loop=-1:size=1:start=0,setpts=N/(30*TB),crop=w=320:h=240:x='$x':y='$y',format=yuv420p[v];"
    echo "anoisesrc=c=pink:r=48000:a=$(amp "$noise - $gain + 11"):seed=$s1:d=$dur,highpass=f=80[n1];"
    echo "anoisesrc=c=brown:r=48000:a=$(amp "$noise - $gain + 12"):seed=$R:d=$dur,highpass=f=40[n2];"
    printf '%s;\n' "${CH[@]}"
    echo "[n1][n2]${MIX}amix=inputs=$(( nmix + 2 )):duration=first:normalize=0,volume=${gain}dB,alimiter=limit=0.8:level=0:latency=1,atrim=end=$dur,aformat=sample_fmts=fltp:channel_layouts=mono[a]"
  } >"$tmp/graph.txt"
  ff -i "$tmp/still_$img.png" "${IN[@]}" -filter_complex_script "$tmp/graph.txt" -map '[v]' -map '[a]' -t "$dur" -r 30 \
    -c:v libx264 -preset veryfast -crf 28 -pix_fmt yuv420p -c:a aac -b:a 64k -ac 1 -ar 48000 \
    -fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 -movflags +faststart "$out/$name.mp4"
  local ev ds; join "${EVJ[@]}"; ev=$J; join "${DSJ[@]}"; ds=$J
  CLIPS+=("    {\"file\": \"$name.mp4\", \"duration\": $dur.000, \"calm\": $3, \"mic_gain_db\": $gain, \"noise_dbfs\": $noise,
     \"image\": \"${STILL_NAMES[img]}${flip:+, mirrored}\",
     \"events\": [${ev:+$'\n'        }$ev],
     \"distractors\": [${ds:+$'\n'        }$ds]}")
  echo "make-event-clips: $name.mp4 ${dur}s, ${#EVJ[@]} events, ${#DSJ[@]} distractors"
}

# ---------------------------------------------------------------- event clips
KINDS=(shouting scream impulse struggle running)
COUNTS=(2 1 3 2 3 1 2 3 2 1 3 2)   # 25 events: every kind 5 times
seed 7; DECK=()
for (( d = 0; d < 5; d++ )); do   # 5 shuffled decks of the 5 kinds
  k=("${KINDS[@]}"); for (( i = 4; i > 0; i-- )); do rnd 0 "$i"; t=${k[i]}; k[i]=${k[R]}; k[R]=$t; done; DECK+=("${k[@]}")
done
next=0
for c in "${!COUNTS[@]}"; do
  seed $(( 1000 + c )); reset_clip; n=${COUNTS[c]}; kinds=(); lens=(); args=(); need=30000
  for (( e = 0; e < n; e++ )); do
    kinds+=("${DECK[next]}"); next=$(( next + 1 )); "plan_${kinds[e]}"; lens+=("$E_LEN"); args+=("$E_ARGS")
    need=$(( need + E_LEN + (e ? 30000 : 0) ))
  done
  rnd 90 150; dur=$(( R > (need + 999) / 1000 ? R : (need + 999) / 1000 )); slack=$(( dur * 1000 - need ))
  rnd 0 $(( slack / 2 )); t=$(( 20000 + R )); slack=$(( slack - R ))
  for (( e = 0; e < n; e++ )); do
    # shellcheck disable=SC2086  # args are space separated on purpose
    "emit_${kinds[e]}" "$t" "${lens[e]}" ${args[e]}
    BUSY+=("$t $(( t + lens[e] ))"); rnd 0 $(( slack / 2 )); t=$(( t + lens[e] + 30000 + R )); slack=$(( slack - R ))
  done
  encode "$(printf 'event_%02d' $(( c + 1 )))" "$dur" false
done

# ---------------------------------------------------------------- calm clips (12 x 150-160 s)
DISTRACT=(thud close turn)
for (( c = 0; c < 12; c++ )); do
  seed $(( 2000 + c )); reset_clip; rnd 150 160; dur=$R; rnd 10000 40000; t=$R; rnd 1 3; n=$R
  for (( e = 0; e < n; e++ )); do
    (( t > (dur - 40) * 1000 )) && break
    pick DISTRACT; "emit_$P" "$t"; rnd 20000 40000; t=$(( t + R ))
  done
  encode "$(printf 'calm_%02d' $(( c + 1 )))" "$dur" true
done

# ---------------------------------------------------------------- index.json (written last = stamp)
{
  printf '{\n  "version": %d,\n  "clips": [\n' "$VERSION"
  for i in "${!CLIPS[@]}"; do printf '%s%s\n' "${CLIPS[i]}" "$( (( i + 1 < ${#CLIPS[@]} )) && echo ,)"; done
  printf '  ]\n}\n'
} >"$tmp/index.json"
mv "$tmp/index.json" "$out/index.json"
echo "make-event-clips: ${#CLIPS[@]} clips in $out, built in $(( SECONDS - t_start )) s"
