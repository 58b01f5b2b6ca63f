# directory() around the pattern 'd{i}' inside expand() is not allowed
rule a:
    output: expand(directory("d{i}"), i=[1, 2])
    shell: "mkdir -p {output}"
