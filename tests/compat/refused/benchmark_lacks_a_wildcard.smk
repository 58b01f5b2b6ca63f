# benchmark 'bench/x.tsv' of rule a lacks wildcard {s} of its output
rule a:
    output: "out/{s}.txt"
    benchmark: "bench/x.tsv"
    shell: "touch {output}"
